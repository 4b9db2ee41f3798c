/** The feedback loop through a real MCP client: rerank → feedback by rerank_id or by text → SQLite → export. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { CLI, TINY_CE, readParity, type TinyParity } from './helpers/fixtures.js';
import { connectStdio, freshDbPath, type StdioConnection } from './helpers/mcp.js';
import { call, errorText } from './helpers/tool-checks.js';
import { runCli, jsonLines } from './helpers/run-cli.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const db = freshDbPath();
let conn: StdioConnection;

before(async () => {
  conn = await connectStdio(['--model', TINY_CE], { RERANK_FEEDBACK_DB: db });
});
after(() => conn.close());

const eventCount = () => {
  const d = new Database(db, { readonly: true });
  try {
    return (d.prepare('SELECT COUNT(*) AS n FROM feedback_events').get() as { n: number }).n;
  } finally {
    d.close();
  }
};

test('feedback by rerank_id labels logged candidates by index and by id, with the score of the moment', async () => {
  const { query, documents } = tiny.st_rank;
  const docs = documents.map((text, i) => ({ id: `doc-${i}`, text }));
  const ranked = (await call(conn.client, 'rerank', { query, documents: docs, top_k: 3 })).structuredContent as {
    rerank_id: string;
    results: { index: number; id: string; score: number }[];
  };
  assert.match(ranked.rerank_id, /^[0-9a-f-]{36}$/);
  const res = await call(conn.client, 'feedback', { rerank_id: ranked.rerank_id, relevant: [ranked.results[0].index], irrelevant: ['doc-5'] });
  assert.deepEqual({ ...res.structuredContent, ids: undefined }, { stored: 2, repeats: 0, ids: undefined });
  const d = new Database(db, { readonly: true });
  const rows = d.prepare('SELECT query, document, document_id, label, source, model_id, model_score, rerank_id FROM feedback_events ORDER BY id').all() as Record<string, unknown>[];
  d.close();
  assert.equal(rows.length, 2);
  assert.equal(rows[0].document, documents[ranked.results[0].index]);
  assert.equal(rows[0].label, 1);
  assert.equal(rows[0].model_score, ranked.results[0].score);
  assert.equal(rows[0].source, 'rerank-mcp-test');
  assert.equal(rows[0].rerank_id, ranked.rerank_id);
  assert.match(String(rows[0].model_id), /tiny-ce#fp32@/);
  // an unlisted candidate id was never returned by top_k, yet all candidates were logged
  assert.equal(rows[1].document_id, 'doc-5');
  assert.equal(rows[1].label, 0);
  assert.match(errorText(await call(conn.client, 'feedback', { rerank_id: ranked.rerank_id, relevant: [99] })), /99/);
  assert.match(errorText(await call(conn.client, 'feedback', { rerank_id: '00000000-0000-0000-0000-000000000000', relevant: [0] })), /unknown rerank_id/);
});

test('feedback by text: single, boolean label, items, repeats counted', async () => {
  const before = eventCount();
  const one = await call(conn.client, 'feedback', { query: 'where is bm25?', document: { id: 'bm25.py', text: 'def bm25(): ...' }, label: true });
  assert.equal((one.structuredContent as { stored: number }).stored, 1);
  const items = [
    { query: 'where is bm25?', document: 'def bm25(): ...', label: 0.5 },
    { query: 'how to index', document: 'indexer.run()', label: 0 },
  ];
  const many = (await call(conn.client, 'feedback', { items })).structuredContent as { stored: number; repeats: number; ids: number[] };
  assert.equal(many.stored, 2);
  assert.equal(many.repeats, 1);
  assert.equal(many.ids.length, 2);
  assert.equal(eventCount(), before + 3);
});

test('invalid labels are refused and nothing is written', async () => {
  const before = eventCount();
  for (const label of [-0.1, 1.5, 'yes', null]) {
    assert.match(errorText(await call(conn.client, 'feedback', { query: 'q', document: 'd', label })), /label must be a finite number from 0 to 1, or a boolean/);
  }
  const mixed = [
    { query: 'q', document: 'd', label: 1 },
    { query: 'q', document: 'd', label: 2 },
  ];
  assert.match(errorText(await call(conn.client, 'feedback', { items: mixed })), /label/);
  assert.match(errorText(await call(conn.client, 'feedback', { query: 'q', document: 'd' })), /needs query, document and label/);
  assert.match(errorText(await call(conn.client, 'feedback', { query: 'q', document: 'd', label: 1, rerank_id: 'x' })), /takes one of/);
  assert.equal(eventCount(), before);
});

test('a label of 1e400 (Infinity once parsed) is refused over raw JSON-RPC', async () => {
  const rawDb = freshDbPath();
  const child = spawn(process.execPath, [CLI, '--model', TINY_CE], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RERANK_FEEDBACK_DB: rawDb } });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } }) + '\n');
  child.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
  child.stdin.write('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"feedback","arguments":{"query":"q","document":"d","label":1e400}}}\n');
  child.stdin.write('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"feedback","arguments":{"query":"q","document":"d","label":-1e400}}}\n');
  await new Promise((r) => setTimeout(r, 2500));
  child.stdin.end();
  await new Promise((r) => child.on('exit', r));
  const replies = jsonLines(stdout) as { id?: number; result?: { isError?: boolean; content: { text: string }[] } }[];
  for (const id of [2, 3]) {
    const reply = replies.find((r) => r.id === id)!;
    assert.equal(reply.result?.isError, true);
    assert.match(reply.result!.content[0].text, /label must be a finite number/);
  }
});

test('Unicode round-trips byte-identical through the tool, SQLite and the export', async () => {
  const query = 'naïve café 🧪 \u05E9\u05DC\u05D5\u05DD e\u0301 \u0000 tail';
  const document = 'RTL \u202Eabc\u202C, emoji 👩‍💻, NUL\u0000inside, combining a\u0308\u0323';
  await call(conn.client, 'feedback', { query, document, label: 1 });
  const d = new Database(db, { readonly: true });
  const row = d.prepare('SELECT query, document FROM feedback_events WHERE query = ?').get(query) as { query: string; document: string };
  d.close();
  assert.equal(Buffer.compare(Buffer.from(row.query), Buffer.from(query)), 0);
  assert.equal(Buffer.compare(Buffer.from(row.document), Buffer.from(document)), 0);
  const out = join(dirname(db), 'train.jsonl');
  const exported = await runCli(['feedback', 'export', '--db', db, '--out', out]);
  assert.equal(exported.code, 0, exported.stderr);
  const rows = jsonLines(readFileSync(out, 'utf8')) as { sentence_0: string; sentence_1: string; label: number }[];
  const mine = rows.find((r) => r.sentence_0 === query)!;
  assert.deepEqual(Object.keys(mine), ['sentence_0', 'sentence_1', 'label']);
  assert.equal(mine.sentence_1, document);
  assert.equal(mine.label, 1);
});

test('feedback://stats resource and `feedback stats` agree', async () => {
  const { resources } = await conn.client.listResources();
  assert.ok(resources.some((r) => r.uri === 'feedback://stats'));
  const read = await conn.client.readResource({ uri: 'feedback://stats' });
  const stats = JSON.parse((read.contents[0] as { text: string }).text) as { events: number; rerankCalls: number; trainingPairs: { total: number } };
  assert.equal(stats.events, eventCount());
  assert.ok(stats.rerankCalls >= 1);
  const cli = await runCli(['feedback', 'stats', '--db', db]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(JSON.parse(cli.stdout).events, stats.events);
  // One name for the database in both.
  assert.equal(JSON.parse(cli.stdout).database, db);
  assert.equal((stats as unknown as { database: string }).database, db);
});

test('annotations say which tools write: rerank while its log is on, feedback always', async () => {
  const hints = async (c: StdioConnection) => Object.fromEntries((await c.client.listTools()).tools.map((t) => [t.name, t.annotations]));
  const on = await hints(conn);
  assert.equal(on.rerank?.readOnlyHint, false, 'rerank writes the rerank log');
  assert.equal(on.rerank?.idempotentHint, false, 'each call logs a new rerank_id');
  assert.equal(on.feedback?.readOnlyHint, false);
  assert.equal(on.score_pair?.readOnlyHint, true);
  assert.equal(on.model_info?.readOnlyHint, true);
  const offConn = await connectStdio(['--model', TINY_CE, '--rerank-log-max-calls', '0']);
  try {
    const off = await hints(offConn);
    assert.equal(off.rerank?.readOnlyHint, true);
    assert.equal(off.rerank?.idempotentHint, true);
  } finally {
    await offConn.close();
  }
});

test('--rerank-log-max-mb bounds the text the server keeps: the oldest calls go, the newest stay labelable', async () => {
  const path = freshDbPath();
  // In process: it reads the server's own log line (the shared daemon logs to its file).
  const c = await connectStdio(['--model', TINY_CE, '--rerank-log-max-mb', '1', '--standalone'], { RERANK_FEEDBACK_DB: path });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const documents = Array.from({ length: 10 }, (_, j) => `call ${i} doc ${j} `.padEnd(40_000, 'w'));
      ids.push(((await call(c.client, 'rerank', { query: `q${i}`, documents, return_documents: false })).structuredContent as { rerank_id: string }).rerank_id);
    }
    const d = new Database(path, { readonly: true });
    const bytes = (d.prepare('SELECT SUM(octet_length(text)) AS n FROM rerank_candidates').get() as { n: number }).n;
    d.close();
    assert.ok(bytes <= 1024 * 1024, `${bytes} bytes of candidate text kept`);
    assert.match(errorText(await call(c.client, 'feedback', { rerank_id: ids[0], relevant: [0] })), /unknown rerank_id/);
    assert.notEqual((await call(c.client, 'feedback', { rerank_id: ids[3], relevant: [0] })).isError, true);
    assert.match(c.stderr(), /rerank log over --rerank-log-max-mb: removed the \d+ oldest call/);
  } finally {
    await c.close();
  }
});
