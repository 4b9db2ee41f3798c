/**
 * Faults a real client or a hostile page can cause: malformed input on stdin, oversized
 * requests, abandoned HTTP sessions, and the signals clients use to stop a server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { CLI, TINY_CE, readParity, type TinyParity } from './helpers/fixtures.js';
import { connectHttp, connectStdio, freshDbPath, startHttpServer } from './helpers/mcp.js';
import { call, errorText } from './helpers/tool-checks.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** A raw stdio server: send lines, read back every stdout line. */
function rawServer(args: string[] = []) {
  const child = spawn(process.execPath, [CLI, '--model', TINY_CE, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RERANK_FEEDBACK_DB: freshDbPath() } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    send: (line: string) => child.stdin.write(line + '\n'),
    replies: () => stdout.split('\n').filter((l) => l !== ''),
    stderr: () => stderr,
    exit,
    waitFor: async (id: number, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = stdout.split('\n').find((l) => l.includes(`"id":${id},`) || l.includes(`"id":${id}}`));
        if (found) return JSON.parse(found);
        assert.ok(Date.now() < deadline, `no reply to id ${id}; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

test('malformed stdin lines leave the server alive and stdout pure JSON-RPC', async () => {
  const s = rawServer();
  s.send(JSON.stringify(INIT));
  s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
  s.send('this is not json');
  s.send('{"id": 7, "method": "tools/list"}');
  s.send('[{"jsonrpc":"2.0","id":8,"method":"tools/list"},{"jsonrpc":"2.0","id":9,"method":"tools/list"}]');
  s.send('{"jsonrpc":"2.0","id":10,"method":"no/such/method"}');
  s.send('{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}');
  s.send('{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":424242}}');
  s.send('{"truncated json": ');
  s.send('{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"score_pair","arguments":{"query":"q","document":"d"}}}');
  const unknownMethod = await s.waitFor(10);
  assert.equal(unknownMethod.error.code, -32601);
  const unknownTool = await s.waitFor(11);
  assert.equal(unknownTool.error.code, -32602);
  const alive = await s.waitFor(12);
  assert.equal(typeof alive.result.structuredContent.results[0].score, 'number');
  s.child.stdin.end();
  assert.equal(await s.exit, 0, 'stdin closing ends the server cleanly');
  for (const line of s.replies()) assert.equal(JSON.parse(line).jsonrpc, '2.0', line);
});

test('a 10 MB string and 10 000 documents are refused without the process growing past 250 MB', async () => {
  const conn = await connectStdio(['--model', TINY_CE]);
  try {
    await call(conn.client, 'score_pair', { query: 'warm', document: 'up' });
    const before = rssMb(conn.pid!);
    assert.match(errorText(await call(conn.client, 'rerank', { query: 'x'.repeat(10 * 1024 * 1024), documents: ['a'] })), /limited to 100000 characters/);
    assert.match(errorText(await call(conn.client, 'rerank', { query: 'q', documents: Array.from({ length: 10_000 }, (_, i) => `document ${i}`) })), /limited to 1000 per call/);
    const after = rssMb(conn.pid!);
    assert.ok(after < 250, `RSS ${before.toFixed(0)} MB before, ${after.toFixed(0)} MB after`);
    // and still serving
    assert.notEqual((await call(conn.client, 'score_pair', { query: 'q', document: 'd' })).isError, true);
  } finally {
    await conn.close();
  }
});

test('a stdio message over --max-body-mb is refused with isError and the session carries on', async () => {
  const conn = await connectStdio(['--model', TINY_CE, '--max-body-mb', '1']);
  try {
    const refused = await call(conn.client, 'rerank', { query: 'q', documents: Array.from({ length: 40 }, () => 'y'.repeat(60_000)) });
    assert.match(errorText(refused), /request of 2\.\d MiB refused: messages are limited to 1 MiB/);
    assert.notEqual((await call(conn.client, 'score_pair', { query: 'q', document: 'd' })).isError, true);
  } finally {
    await conn.close();
  }
});

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<number> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('http: a body over --max-body-mb gets 413 and the server keeps serving', async () => {
  const server = await startHttpServer(['--model', TINY_CE, '--max-body-mb', '1']);
  try {
    const big = JSON.stringify({ ...INIT, params: { ...INIT.params, padding: 'x'.repeat(2 * 1024 * 1024) } });
    assert.equal(await post(server.url, big), 413);
    const client = await connectHttp(server.url);
    assert.notEqual((await call(client, 'score_pair', { query: 'q', document: 'd' })).isError, true);
    await client.close();
  } finally {
    await server.stop();
  }
});

test('http: sessions idle past --session-idle-seconds are closed', async () => {
  const server = await startHttpServer(['--model', TINY_CE, '--session-idle-seconds', '1']);
  try {
    const client = await connectHttp(server.url);
    assert.notEqual((await call(client, 'score_pair', { query: 'q', document: 'd' })).isError, true);
    await new Promise((r) => setTimeout(r, 2500));
    await assert.rejects(call(client, 'score_pair', { query: 'q', document: 'd' }));
    assert.match(server.stderr(), /closing HTTP session .* idle/);
    await client.close().catch(() => undefined);
  } finally {
    await server.stop();
  }
});

test('SIGTERM lets a call in flight finish, then exits 0 within a few seconds (stdio)', async () => {
  const s = rawServer(['--max-batch-tokens', '1024']);
  s.send(JSON.stringify(INIT));
  s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
  await s.waitFor(1);
  const documents = tiny.pairs.slice(0, 300).map(([, d], i) => `${i} ${d}`);
  s.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'rerank', arguments: { query: 'q', documents, return_documents: false } } }));
  await new Promise((r) => setTimeout(r, 150));
  const started = Date.now();
  s.child.kill('SIGTERM');
  const code = await s.exit;
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  const reply = JSON.parse(s.replies().find((l) => l.includes('"id":2'))!);
  assert.equal(reply.result.structuredContent.results.length, 300, 'the call in flight got its full answer');
  assert.match(s.stderr(), /SIGTERM: finishing 1 call\(s\) in flight/);
});

test('SIGTERM over HTTP: the call in flight is answered, then exit 0', async () => {
  const server = await startHttpServer(['--model', TINY_CE, '--max-batch-tokens', '1024']);
  const client = await connectHttp(server.url);
  const documents = tiny.pairs.slice(0, 300).map(([, d], i) => `${i} ${d}`);
  const pending = call(client, 'rerank', { query: 'q', documents, return_documents: false });
  await new Promise((r) => setTimeout(r, 150));
  const code = server.stop();
  const result = await pending;
  assert.equal((result.structuredContent as { results: unknown[] }).results.length, 300);
  assert.equal(await code, 0);
  await client.close().catch(() => undefined);
});
