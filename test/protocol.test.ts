/**
 * Every JSON-RPC message gets an answer or one log line, over raw stdio and raw HTTP: ids the
 * server cannot echo, duplicates of an id still in flight, unknown tools.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, TINY_CE } from './helpers/fixtures.js';
import { connectHttp, connectStdio, freshDbPath, startHttpServer } from './helpers/mcp.js';
import { readDirFiles, singleCommitRepo, startFakeHub } from './helpers/fake-hub.js';

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };
/** Written as raw text: JSON.stringify could not produce these ids. */
const BAD_IDS = ['12345678901234567890', '1e400', '1.5'];

type Reply = { jsonrpc: string; id: unknown; result?: Record<string, unknown>; error?: { code: number; message: string } };

// In-process (--standalone): these tests read the server's own stderr, which in daemon mode goes to the daemon's log file.
function rawStdio(args: string[] = ['--standalone', '--model', TINY_CE], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RERANK_FEEDBACK_DB: freshDbPath(), ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const replies = () =>
    stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Reply);
  return {
    child,
    exit,
    send: (line: string) => child.stdin.write(line + '\n'),
    replies,
    stderr: () => stderr,
    async until(what: string, done: (r: Reply[]) => boolean, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(replies())) {
        assert.ok(Date.now() < deadline, `${what}: timed out; replies ${stdout.slice(0, 2000)}\nstderr ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return replies();
    },
  };
}

test('stdio through the shared daemon: ids that cannot be echoed get -32600 with id null; the session carries on', async () => {
  const s = rawStdio(['--model', TINY_CE]);
  try {
    s.send(JSON.stringify(INIT));
    s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    for (const id of BAD_IDS) s.send(`{"jsonrpc":"2.0","id":${id},"method":"ping"}`);
    s.send('{"jsonrpc":"2.0","id":2,"method":"ping"}');
    const replies = await s.until('replies to all', (r) => r.filter((m) => m.id === null).length >= 3 && r.some((m) => m.id === 2));
    assert.deepEqual(replies.filter((m) => m.id === null).map((m) => m.error?.code), [-32600, -32600, -32600]);
    s.child.stdin.end();
    assert.equal(await s.exit, 0);
  } finally {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  }
});

test('stdio: ids that cannot be echoed get -32600 with id null, in one log line each; the session carries on', async () => {
  const s = rawStdio();
  try {
    s.send(JSON.stringify(INIT));
    s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    for (const id of BAD_IDS) s.send(`{"jsonrpc":"2.0","id":${id},"method":"ping"}`);
    s.send('{"jsonrpc":"2.0","id":null,"method":"ping"}');
    s.send('{"jsonrpc":"2.0","id":2,"method":"ping"}');
    const replies = await s.until('replies to all', (r) => r.filter((m) => m.id === null).length >= 4 && r.some((m) => m.id === 2));
    const refused = replies.filter((m) => m.id === null);
    assert.equal(refused.length, 4, JSON.stringify(replies));
    for (const m of refused) {
      assert.equal(m.error?.code, -32600);
      assert.match(m.error!.message, /^Invalid Request: the id /);
    }
    assert.match(refused[0].error!.message, /beyond 2\^53/);
    assert.match(refused[1].error!.message, /out of range/);
    assert.match(refused[2].error!.message, /1\.5 is not an integer/);
    assert.deepEqual(replies.find((m) => m.id === 2)?.result, {});
    s.child.stdin.end();
    assert.equal(await s.exit, 0);
    const refusedLines = s.stderr().split('\n').filter((l) => /refused a ping request with id null/.test(l));
    assert.equal(refusedLines.length, 4, s.stderr());
    // no multi-line schema dump: every stderr line is one of ours
    for (const line of s.stderr().split('\n').filter((l) => l !== '')) assert.match(line, /^\[rerank-mcp\] /, s.stderr());
  } finally {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  }
});

test('stdio: other malformed messages are answered or logged, never dropped in silence', async () => {
  const s = rawStdio();
  try {
    s.send(JSON.stringify(INIT));
    s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    s.send('{"jsonrpc":"1.0","id":3,"method":"ping"}');
    s.send('{"jsonrpc":"2.0","id":4,"method":"ping","extra":true}');
    s.send('{"jsonrpc":"2.0","id":true,"method":"ping"}');
    s.send('"just a string"');
    s.send('{"jsonrpc":"2.0","method":"notifications/progress","params":"not an object"}');
    s.send('{"jsonrpc":"2.0","id":5,"method":"ping"}');
    const replies = await s.until('replies', (r) => r.some((m) => m.id === 5) && r.some((m) => m.id === 3) && r.some((m) => m.id === 4) && r.filter((m) => m.id === null).length >= 2);
    assert.equal(replies.find((m) => m.id === 3)?.error?.code, -32600);
    assert.match(replies.find((m) => m.id === 3)!.error!.message, /jsonrpc/);
    assert.match(replies.find((m) => m.id === 4)!.error!.message, /extra/);
    s.child.stdin.end();
    assert.equal(await s.exit, 0);
    assert.match(s.stderr(), /dropped a notifications\/progress notification: /);
  } finally {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  }
});

/** A fake Hub whose model download stalls, so a tool call stays in flight for as long as a test wants, without load on the CPU. */
async function stalledHub() {
  const hub = await startFakeHub([singleCommitRepo('acme/tiny-ce', readDirFiles(TINY_CE))]);
  hub.faults.stallAfter.set('onnx/model.onnx', 1 << 10);
  return { hub, args: ['--model', 'acme/tiny-ce'], env: { HF_ENDPOINT: hub.url, HF_HUB_CACHE: mkdtempSync(join(tmpdir(), 'rerank-hf-')) } };
}

test('stdio: a request reusing the id of one in flight is refused; cancellation still reaches the first, and the id is free once it has ended', async () => {
  const s = rawStdio();
  try {
    s.send(JSON.stringify(INIT));
    s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    // The call waits for the model, which loads only after the handshake: it is in flight when the duplicate comes.
    s.send(JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'score_pair', arguments: { query: 'q', document: 'd' } } }));
    s.send('{"jsonrpc":"2.0","id":10,"method":"ping"}');
    s.send('{"jsonrpc":"2.0","id":11,"method":"ping"}');
    const early = await s.until('the duplicate refused', (r) => r.some((m) => m.id === 10) && r.some((m) => m.id === 11));
    const dup = early.find((m) => m.id === 10)!;
    assert.equal(dup.error?.code, -32600, JSON.stringify(dup));
    assert.match(dup.error!.message, /id 10 is already used by a request still in flight/);
    assert.deepEqual(early.find((m) => m.id === 11)?.result, {});
    s.send('{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":10,"reason":"test"}}');
    // Once the cancelled call has ended (it gets no answer), id 10 can be used again.
    const deadline = Date.now() + 30_000;
    let pings = 0;
    while (!s.replies().some((m) => m.id === 10 && m.result !== undefined)) {
      assert.ok(Date.now() < deadline, `id 10 never freed: ${JSON.stringify(s.replies()).slice(0, 1000)}\n${s.stderr()}`);
      s.send('{"jsonrpc":"2.0","id":10,"method":"ping"}');
      pings++;
      await new Promise((r) => setTimeout(r, 300));
    }
    await new Promise((r) => setTimeout(r, 300));
    const tens = s.replies().filter((m) => m.id === 10);
    assert.ok(tens.every((m) => m.error !== undefined || JSON.stringify(m.result) === '{}'), `the cancelled call was answered: ${JSON.stringify(tens).slice(0, 500)}`);
    assert.equal(tens.filter((m) => m.result !== undefined).length, 1, JSON.stringify(tens).slice(0, 500));
    assert.ok(pings >= 1);
    assert.match(s.stderr(), /refused a ping request: id 10 is already in flight in this session/);
    s.child.stdin.end();
    assert.equal(await s.exit, 0);
  } finally {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  }
});

test('an unknown tool is a JSON-RPC error -32602 "Unknown tool", for the SDK client over stdio and HTTP', async () => {
  const conn = await connectStdio(['--model', TINY_CE]);
  const server = await startHttpServer(['--model', TINY_CE]);
  try {
    const http = await connectHttp(server.url);
    for (const client of [conn.client, http]) {
      await assert.rejects(client.callTool({ name: 'rerank_v2', arguments: { query: 'q', documents: ['a'] } }), (err: Error & { code?: number }) => {
        assert.equal(err.code, -32602);
        assert.match(err.message, /Unknown tool: rerank_v2/);
        return true;
      });
      // known tools are unchanged
      const ok = await client.callTool({ name: 'score_pair', arguments: { query: 'q', document: 'd' } });
      assert.notEqual(ok.isError, true);
    }
    await http.close();
  } finally {
    await conn.close();
    await server.stop();
  }
});

type RawResponse = { status: number; body: string; headers: Record<string, string | string[] | undefined> };

/** A POST whose body is sent as given (raw text), so ids JSON.stringify cannot write can be sent. */
function post(url: string, body: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<RawResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', signal, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('http: ids that cannot be echoed get 400 with -32600 and id null; a second POST reusing an id in flight is refused until the first ends', async () => {
  const { hub, args, env } = await stalledHub();
  const s = await startHttpServer(args, env);
  const abort = new AbortController();
  try {
    const init = await post(s.url, JSON.stringify(INIT));
    assert.equal(init.status, 200, init.body);
    const session = { 'mcp-session-id': init.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-06-18' };
    for (const id of BAD_IDS) {
      const res = await post(s.url, `{"jsonrpc":"2.0","id":${id},"method":"ping"}`, session);
      assert.equal(res.status, 400, res.body);
      const body = JSON.parse(res.body) as Reply;
      assert.equal(body.id, null);
      assert.equal(body.error?.code, -32600);
      assert.match(body.error!.message, /^Invalid Request: the id /);
    }
    const slow = post(s.url, JSON.stringify({ jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: 'score_pair', arguments: { query: 'q', document: 'd' } } }), session, abort.signal);
    slow.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    const dup = await post(s.url, '{"jsonrpc":"2.0","id":"call-1","method":"ping"}', session);
    assert.equal(dup.status, 400, dup.body);
    assert.match((JSON.parse(dup.body) as Reply).error!.message, /id "call-1" is already used by a request still in flight/);
    const other = await post(s.url, '{"jsonrpc":"2.0","id":"call-2","method":"ping"}', session);
    assert.equal(other.status, 200, other.body);
    // the client gives up on the first call: its id is free again
    abort.abort();
    await new Promise((r) => setTimeout(r, 300));
    const again = await post(s.url, '{"jsonrpc":"2.0","id":"call-1","method":"ping"}', session);
    assert.equal(again.status, 200, again.body);
    assert.match(s.stderr(), /refused a ping request with id null: the id 1\.5 is not an integer/);
  } finally {
    abort.abort();
    s.child.kill('SIGKILL');
    await hub.close();
  }
});
