/** The built server over stdio, driven by the SDK's Client and by raw JSON-RPC lines. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, TINY_CE, readParity, type TinyParity } from './helpers/fixtures.js';
import { connectStdio, freshDbPath, type StdioConnection } from './helpers/mcp.js';
import { call, checkBadInputs, checkModelInfo, checkRerank, checkScorePair, checkToolList } from './helpers/tool-checks.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
let conn: StdioConnection;

before(async () => {
  // a small batch budget makes a call span many batches, for progress and cancellation
  conn = await connectStdio(['--model', TINY_CE, '--max-batch-tokens', '2048']);
});
after(() => conn.close());

test('stdio: lists the tools with titles, annotations and output schemas', () => checkToolList(conn.client));
test('stdio: rerank orders like CrossEncoder.rank, with top_k, min_score, ids', () => checkRerank(conn.client));
test('stdio: score_pair scores single pairs and lists in input order', () => checkScorePair(conn.client));
test('stdio: model_info describes the model', () => checkModelInfo(conn.client));
test('stdio: bad inputs get isError naming the limit', () => checkBadInputs(conn.client));

test('stdio: the handshake is answered before the model loads; the first call waits for it', async () => {
  // Creating an ONNX Runtime session blocks the event loop, so the load starts only once the
  // client has finished the handshake.
  // In process: the log lines it checks are the standalone server's (the shared daemon logs to its file).
  const fresh = await connectStdio(['--model', TINY_CE, '--standalone']);
  try {
    assert.doesNotMatch(fresh.stderr(), /loading the model/);
    const result = await call(fresh.client, 'score_pair', { query: tiny.pairs[0][0], document: tiny.pairs[0][1] });
    assert.ok(Math.abs((result.structuredContent as { results: { logit: number }[] }).results[0].logit - tiny.torch_logits[0]) < 1e-4);
    const stderr = fresh.stderr();
    assert.match(stderr, /model loaded/);
    assert.ok(stderr.indexOf('serving MCP over stdio') < stderr.indexOf('loading the model'), stderr);
  } finally {
    await fresh.close();
  }
});

test('stdio: progress notifications arrive per batch', async () => {
  const documents = tiny.pairs.slice(0, 120).map(([, d]) => d);
  const updates: { progress: number; total?: number }[] = [];
  await conn.client.callTool({ name: 'rerank', arguments: { query: 'search', documents } }, undefined, { onprogress: (p) => updates.push(p) });
  assert.ok(updates.length >= 3, `got ${updates.length} progress notifications`);
  assert.equal(updates.at(-1)!.progress, 120);
  assert.equal(updates.at(-1)!.total, 120);
  for (let i = 1; i < updates.length; i++) assert.ok(updates[i].progress > updates[i - 1].progress);
});

test('stdio: a cancelled call stops between batches', async () => {
  const infoBefore = (await call(conn.client, 'model_info', {})).structuredContent as { pairs_scored: number };
  // distinct documents: repeats would be scored once and make the count meaningless
  const documents = Array.from({ length: 1000 }, (_, i) => `${i}: ${tiny.pairs[i % tiny.pairs.length][1]}`);
  const controller = new AbortController();
  let progressCount = 0;
  const pending = conn.client.callTool({ name: 'rerank', arguments: { query: 'search', documents } }, undefined, {
    signal: controller.signal,
    onprogress: () => {
      if (++progressCount === 1) controller.abort('test cancels');
    },
  });
  await assert.rejects(pending);
  await new Promise((r) => setTimeout(r, 1500));
  const infoAfter = (await call(conn.client, 'model_info', {})).structuredContent as { pairs_scored: number };
  const scored = infoAfter.pairs_scored - infoBefore.pairs_scored;
  assert.ok(scored < 1000 / 2, `scored ${scored} pairs of a cancelled 1000-document call`);
  // the server is still fine afterwards
  const ok = await call(conn.client, 'score_pair', { query: 'a', document: 'b' });
  assert.notEqual(ok.isError, true);
});

for (const mode of ['standalone', 'shared daemon'] as const) test(`stdio (${mode}): stdout carries only JSON-RPC, logs go to stderr, a cancelled request gets no reply`, async () => {
  const child = spawn(process.execPath, [CLI, '--model', TINY_CE, '--max-batch-tokens', '1024', ...(mode === 'standalone' ? ['--standalone'] : [])], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RERANK_FEEDBACK_DB: freshDbPath() } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const send = (msg: object) => child.stdin.write(JSON.stringify(msg) + '\n');
  send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } });
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
  send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'rerank', arguments: { query: 'q', documents: ['a', 'b'] } } });
  const documents = Array.from({ length: 600 }, (_, i) => tiny.pairs[i % tiny.pairs.length][1]);
  send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'rerank', arguments: { query: 'q', documents } } });
  await new Promise((r) => setTimeout(r, 300));
  send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 4, reason: 'test' } });
  send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'score_pair', arguments: { query: 'q', document: 'd' } } });
  await new Promise((r) => setTimeout(r, 2500));
  child.stdin.end();
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 0, stderr);
  const lines = stdout.split('\n').filter((l) => l !== '');
  const messages = lines.map((l) => JSON.parse(l) as { jsonrpc: string; id?: number });
  messages.forEach((m) => assert.equal(m.jsonrpc, '2.0'));
  const ids = messages.map((m) => m.id).filter((id) => id !== undefined);
  assert.deepEqual(ids.sort(), [1, 2, 3, 5]);
  // The shared daemon logs to its file; the shim says nothing when all is well.
  if (mode === 'standalone') {
    assert.match(stderr, /\[rerank-mcp\] serving MCP over stdio/);
    assert.match(stderr, /model loaded/);
  } else assert.equal(stderr, '');
});
