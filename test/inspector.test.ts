/**
 * The built server driven by the MCP Inspector's CLI: a client written by others, so where it
 * and the SDK's Client (test/helpers/mcp.ts) disagree about what the server answered, the
 * server is wrong. Over stdio (the Inspector spawns the server per call) and over Streamable
 * HTTP (one server started here). Offline: the Inspector runs from node_modules on this Node.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { TINY_CE, maxAbsDiff, readParity, type TinyParity } from './helpers/fixtures.js';
import { callTool, inspector, type InspectorRun, type Target } from './helpers/inspector.js';
import { connectHttp, connectStdio, freshDbPath, startHttpServer, type HttpServerProcess, type StdioConnection } from './helpers/mcp.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const TOOLS = ['feedback', 'model_info', 'rerank', 'score_pair'];
/** Per test: a few Inspector processes, each of which may load the model (the first may be slow). */
const TEST_TIMEOUT = 240_000;

type Structured = Record<string, unknown>;
interface RerankResult {
  index: number;
  id?: string;
  score: number;
  logit: number;
  truncated: boolean;
  windows: number;
  document?: unknown;
}

/** A successful tools/call: exit 0, no isError, structuredContent mirrored as JSON text. */
function ok(run: InspectorRun): Structured {
  assert.equal(run.code, 0, `inspector exit ${run.code}: ${run.stdout.slice(0, 500)}\n${run.stderr.slice(-1500)}`);
  const result = run.json.result!;
  assert.notEqual(result.isError, true, JSON.stringify(result).slice(0, 500));
  const content = result.content as { type: string; text?: string }[];
  assert.equal(content[0].type, 'text');
  assert.deepEqual(JSON.parse(content[0].text!), result.structuredContent);
  return result.structuredContent!;
}

function feedbackRows(dbPath: string): { query: string; document: string; document_id: string | null; label: number; rerank_id: string | null; source: string | null }[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT query, document, document_id, label, rerank_id, source FROM feedback_events ORDER BY id').all() as ReturnType<typeof feedbackRows>;
  } finally {
    db.close();
  }
}

const withoutRerankId = ({ rerank_id: _, ...rest }: Structured): Structured => rest;

/** The same checks over either transport; `sdk` is an SDK Client on an equivalent server. */
function suite(label: string, ctx: () => { target: Target; db: string; sdk: Client }): void {
  test(`${label}: inspector lists the 4 tools exactly as the SDK client sees them`, { timeout: TEST_TIMEOUT }, async () => {
    const { target, sdk } = ctx();
    // --strict: exit 6 if any tool schema has an error-severity portability problem
    const run = await inspector(target, ['--method', 'tools/list', '--strict']);
    assert.equal(run.code, 0, run.stderr.slice(-2000));
    assert.equal(run.leftovers, false, 'the stdio server outlived the inspector');
    // and no portability warning either, and no $ref (which some clients cannot resolve)
    assert.equal((run.json as { schemaFindings?: unknown }).schemaFindings, undefined, JSON.stringify((run.json as { schemaFindings?: unknown }).schemaFindings));
    assert.doesNotMatch(run.stderr, /Warning|portability/, run.stderr.slice(-2000));
    assert.ok(!run.stdout.includes('$ref'), 'no $ref in any schema');
    const tools = (run.json.result as { tools: { name: string }[] }).tools;
    assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
    const fromSdk = (await sdk.listTools()).tools;
    const byName = <T extends { name: string }>(list: T[]) => Object.fromEntries(list.map((t) => [t.name, t]));
    assert.deepEqual(JSON.parse(JSON.stringify(byName(tools))), JSON.parse(JSON.stringify(byName(fromSdk))));
  });

  test(`${label}: inspector rerank orders like CrossEncoder.rank, and agrees with the SDK client`, { timeout: TEST_TIMEOUT }, async () => {
    const { target, sdk } = ctx();
    const { query, documents, result } = tiny.st_rank;
    const res = ok(await callTool(target, 'rerank', { query, documents }));
    const results = res.results as RerankResult[];
    assert.deepEqual(results.map((r) => r.index), result.map((r) => r.corpus_id));
    assert.ok(maxAbsDiff(results.map((r) => r.score), result.map((r) => r.score)) < 1e-4);
    results.forEach((r) => assert.equal(r.document, documents[r.index]));
    assert.equal(typeof res.rerank_id, 'string');

    const viaSdk = (await sdk.callTool({ name: 'rerank', arguments: { query, documents } })).structuredContent as Structured;
    assert.deepEqual(withoutRerankId(res), withoutRerankId(viaSdk));

    // The object form with ids and top_k, passed verbatim with --tool-args-json.
    const objects = documents.map((text, i) => ({ id: `doc-${i}`, text, metadata: { path: `f${i}.py` } }));
    const args = { query, documents: objects, top_k: 3, return_documents: false };
    const top = ok(await callTool(target, 'rerank', args, 'json'));
    assert.deepEqual((top.results as RerankResult[]).map((r) => r.id), result.slice(0, 3).map((r) => `doc-${r.corpus_id}`));
    const topSdk = (await sdk.callTool({ name: 'rerank', arguments: args })).structuredContent as Structured;
    assert.deepEqual(withoutRerankId(top), withoutRerankId(topSdk));
  });

  test(`${label}: inspector score_pair matches CrossEncoder.predict, single and batched`, { timeout: TEST_TIMEOUT }, async () => {
    const { target, sdk } = ctx();
    const [q, d] = tiny.pairs[0];
    const single = ok(await callTool(target, 'score_pair', { query: q, document: d }));
    const singleResults = single.results as { score: number }[];
    assert.equal(singleResults.length, 1);
    assert.ok(Math.abs(singleResults[0].score - tiny.st_predict_default[0]) < 1e-4, `${singleResults[0].score} vs ${tiny.st_predict_default[0]}`);

    const pairs = tiny.pairs.slice(0, 10).map(([query, document]) => ({ query, document }));
    const many = ok(await callTool(target, 'score_pair', { pairs }));
    assert.ok(maxAbsDiff((many.results as { score: number }[]).map((r) => r.score), tiny.st_predict_default.slice(0, 10)) < 1e-4);
    const viaSdk = (await sdk.callTool({ name: 'score_pair', arguments: { pairs } })).structuredContent;
    assert.deepEqual(many, viaSdk);
  });

  test(`${label}: inspector sees a bad call as a tool error (isError, exit 5)`, { timeout: TEST_TIMEOUT }, async () => {
    const { target } = ctx();
    const run = await callTool(target, 'score_pair', { query: 'only a query' });
    assert.equal(run.code, 5, run.stdout);
    assert.equal(run.json.result?.isError, true);
    assert.match(JSON.stringify(run.json.result?.content), /needs both query and document/);
  });

  test(`${label}: unknown fields are refused, as additionalProperties: false advertises`, { timeout: TEST_TIMEOUT }, async () => {
    const { target } = ctx();
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['rerank', { query: 'q', documents: ['a'], topk: 3 }, /topk/],
      ['rerank', { query: 'q', documents: [{ text: 'a', title: 't' }] }, /title/],
      ['score_pair', { pairs: [{ query: 'q', document: 'd', doc_id: 'x' }] }, /doc_id/],
      ['feedback', { query: 'q', document: 'd', label: 1, lable: 1 }, /lable/],
      ['model_info', { verbose: true }, /verbose/],
    ];
    for (const [tool, args, field] of cases) {
      const run = await callTool(target, tool, args, 'json');
      const text = JSON.stringify(run.json);
      assert.notEqual(run.code, 0, `${tool} accepted ${JSON.stringify(args)}: ${text.slice(0, 300)}`);
      assert.match(text, /Unrecognized key/, text.slice(0, 500));
      assert.match(text, field);
    }
  });

  test(`${label}: inspector feedback is stored in the SQLite file`, { timeout: TEST_TIMEOUT }, async () => {
    const { target, db } = ctx();
    const query = `inspector ${label} query`;
    const stored = ok(await callTool(target, 'feedback', { query, document: 'a judged passage', label: 1 }));
    assert.equal(stored.stored, 1);
    assert.equal((stored.ids as number[]).length, 1);
    const row = feedbackRows(db).find((r) => r.query === query);
    assert.ok(row, `no feedback row for ${query} in ${db}`);
    assert.equal(row.document, 'a judged passage');
    assert.equal(row.label, 1);

    // Labels by rerank_id: over stdio the rerank ran in another server process than the
    // feedback (one per inspector call), so this also checks the rerank log is on disk.
    const { query: q, documents, result } = tiny.st_rank;
    const reranked = ok(await callTool(target, 'rerank', { query: q, documents: documents.map((text, i) => ({ id: `d${i}`, text })) }));
    const best = result[0].corpus_id;
    const byId = ok(await callTool(target, 'feedback', { rerank_id: reranked.rerank_id, relevant: [best], irrelevant: [`d${result[1].corpus_id}`] }, 'json'));
    assert.equal(byId.stored, 2);
    const rows = feedbackRows(db).filter((r) => r.rerank_id === reranked.rerank_id);
    assert.deepEqual(rows.map((r) => [r.document, r.document_id, r.label]), [
      [documents[best], `d${best}`, 1],
      [documents[result[1].corpus_id], `d${result[1].corpus_id}`, 0],
    ]);
  });

  test(`${label}: inspector model_info describes the model like the SDK client`, { timeout: TEST_TIMEOUT }, async () => {
    const { target, sdk } = ctx();
    const info = ok(await callTool(target, 'model_info', {}));
    assert.deepEqual((info.input_names as string[]).slice().sort(), ['attention_mask', 'input_ids', 'token_type_ids']);
    assert.equal(info.max_length, 512);
    assert.equal(info.activation, 'identity');
    assert.equal(info.num_labels, 1);
    assert.equal(info.variant, 'fp32');
    const viaSdk = (await sdk.callTool({ name: 'model_info', arguments: {} })).structuredContent as Structured;
    // counters and cache differ with each server's history; the description must not
    const stable = ({ batches_run: _b, pairs_scored: _p, cache: _c, ...rest }: Structured) => rest;
    assert.deepEqual(stable(info), stable(viaSdk));
  });
}

// stdio: every inspector call spawns its own server, all writing to one feedback DB.
const stdioDb = freshDbPath();
let stdioSdk: StdioConnection | undefined;

// HTTP: one server, shared by the inspector and the SDK client.
const httpDb = freshDbPath();
let http: HttpServerProcess | undefined;
let httpSdk: Client | undefined;

before(async () => {
  stdioSdk = await connectStdio(['--model', TINY_CE]);
  http = await startHttpServer(['--model', TINY_CE], { RERANK_FEEDBACK_DB: httpDb });
  httpSdk = await connectHttp(http.url);
});

after(async () => {
  await Promise.allSettled([stdioSdk?.close(), httpSdk?.close()]);
  if (http) {
    const server = http;
    const killer = setTimeout(() => server.child.kill('SIGKILL'), 5_000);
    await server.stop();
    clearTimeout(killer);
  }
});

suite('stdio', () => ({ target: { stdio: { serverArgs: ['--model', TINY_CE], env: { RERANK_FEEDBACK_DB: stdioDb } } }, db: stdioDb, sdk: stdioSdk!.client }));
suite('http', () => ({ target: { http: http!.url }, db: httpDb, sdk: httpSdk! }));
