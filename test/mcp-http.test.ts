/** The built server over Streamable HTTP: the SDK's Client, and raw requests for the guards. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY_CE } from './helpers/fixtures.js';
import { readDirFiles, singleCommitRepo, startFakeHub } from './helpers/fake-hub.js';
import { connectHttp, startHttpServer, type HttpServerProcess } from './helpers/mcp.js';
import { runCli } from './helpers/run-cli.js';
import { checkBadInputs, checkModelInfo, checkRerank, checkScorePair, checkToolList } from './helpers/tool-checks.js';

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };

type RawResponse = { status: number; body: string; headers: Record<string, string | string[] | undefined> };

function raw(url: string, options: { method?: string; headers?: Record<string, string>; body?: unknown; path?: string }): Promise<RawResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: options.path ?? target.pathname,
        method: options.method ?? 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...options.headers },
      },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
  });
}

let server: HttpServerProcess;
before(async () => {
  server = await startHttpServer(['--model', TINY_CE]);
});
after(() => server.stop());

test('http: the SDK client lists and calls every tool', async () => {
  const client = await connectHttp(server.url);
  try {
    await checkToolList(client);
    await checkRerank(client);
    await checkScorePair(client);
    await checkModelInfo(client);
    await checkBadInputs(client);
  } finally {
    await client.close();
  }
});

test('http: two sessions at once are independent', async () => {
  const [a, b] = await Promise.all([connectHttp(server.url), connectHttp(server.url)]);
  try {
    await Promise.all([checkScorePair(a), checkScorePair(b)]);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('http: /healthz answers without a session', async () => {
  const res = await raw(server.url, { method: 'GET', path: '/healthz' });
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).status, 'ok');
});

test('http: a foreign Host or Origin gets 403', async () => {
  const host = await raw(server.url, { headers: { host: 'evil.example.com' }, body: INIT });
  assert.equal(host.status, 403);
  assert.match(host.body, /Host evil\.example\.com is not allowed/);
  const rebinding = await raw(server.url, { headers: { host: `attacker.test:${new URL(server.url).port}` }, body: INIT });
  assert.equal(rebinding.status, 403);
  const origin = await raw(server.url, { headers: { origin: 'https://evil.example.com' }, body: INIT });
  assert.equal(origin.status, 403);
  assert.match(origin.body, /Origin https:\/\/evil\.example\.com is not allowed/);
  const localOrigin = await raw(server.url, { headers: { origin: `http://localhost:${new URL(server.url).port}` }, body: INIT });
  assert.equal(localOrigin.status, 200);
});

test('http: requests without a session are refused unless they initialize', async () => {
  const res = await raw(server.url, { body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
  assert.equal(res.status, 400);
  const unknown = await raw(server.url, { headers: { 'mcp-session-id': 'nope' }, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
  assert.equal(unknown.status, 404);
});

test('http: with RERANK_MCP_TOKEN set, requests need the bearer token', async () => {
  const guarded = await startHttpServer(['--model', TINY_CE], { RERANK_MCP_TOKEN: 's3cret-token' });
  try {
    const none = await raw(guarded.url, { body: INIT });
    assert.equal(none.status, 401);
    const wrong = await raw(guarded.url, { headers: { authorization: 'Bearer wrong' }, body: INIT });
    assert.equal(wrong.status, 401);
    await assert.rejects(connectHttp(guarded.url));
    const client = await connectHttp(guarded.url, { authorization: 'Bearer s3cret-token' });
    await checkScorePair(client);
    await client.close();
    assert.ok(!guarded.stderr().includes('s3cret-token'), 'the token never appears in logs');
  } finally {
    await guarded.stop();
  }
});

test('http: refuses to bind a non-loopback address without a token', async () => {
  const res = await runCli(['--http', '--host', '0.0.0.0', '--port', '0', '--model', TINY_CE]);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /refusing to listen on 0\.0\.0\.0 without a token/);
});

test('http: SIGTERM stops the server with exit code 0', async () => {
  const s = await startHttpServer(['--model', TINY_CE]);
  assert.equal(await s.stop(), 0);
});

/** Opens a raw session (initialize only) and returns its id. */
async function openSession(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await raw(url, { headers, body: INIT });
  assert.equal(res.status, 200, res.body);
  return res.headers['mcp-session-id'] as string;
}

function checkRefusedSession(res: RawResponse, max: number): void {
  assert.equal(res.status, 503, res.body);
  assert.match(String(res.headers['retry-after']), /^\d+$/);
  assert.ok(Number(res.headers['retry-after']) >= 1);
  const body = JSON.parse(res.body);
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.id, INIT.id);
  assert.match(body.error.message, new RegExp(`${max} are open \\(--max-sessions\\)`));
}

/** A fake Hub whose model download stalls: a tool call then stays in flight for as long as the test wants, without load on the CPU. */
async function stalledModel() {
  const hub = await startFakeHub([singleCommitRepo('acme/tiny-ce', readDirFiles(TINY_CE))]);
  hub.faults.stallAfter.set('onnx/model.onnx', 1 << 10);
  return { hub, args: ['--model', 'acme/tiny-ce'], env: { HF_ENDPOINT: hub.url, HF_HUB_CACHE: mkdtempSync(join(tmpdir(), 'rerank-hf-')) } };
}

test('http: --max-sessions 3 with a call in flight in each: a 4th initialize gets 503 with Retry-After; once one is idle, it makes room', async () => {
  const { hub, args, env } = await stalledModel();
  const s = await startHttpServer([...args, '--max-sessions', '3'], env);
  const clients = await Promise.all([connectHttp(s.url), connectHttp(s.url), connectHttp(s.url)]);
  const controllers = clients.map(() => new AbortController());
  try {
    const calls = clients.map((c, i) => c.callTool({ name: 'score_pair', arguments: { query: 'q', document: 'd' } }, undefined, { signal: controllers[i].signal, timeout: 120_000 }).catch(() => undefined));
    await new Promise((r) => setTimeout(r, 500));
    checkRefusedSession(await raw(s.url, { body: INIT }), 3);
    assert.match(s.stderr(), /refused a new HTTP session: all 3 open sessions \(--max-sessions\) have a call in flight/);
    // the busy sessions still work
    await clients[0].ping();
    // one client goes away without a DELETE: its session is idle now, and the next client takes its place
    await clients[1].close();
    await calls[1];
    await new Promise((r) => setTimeout(r, 300));
    await openSession(s.url);
    assert.match(s.stderr(), /closing HTTP session [0-9a-f]{8}…, the least recently used/);
    await clients[0].ping();
    await clients[2].ping();
  } finally {
    // SIGKILL: a SIGTERM would wait out the drain timeout for the calls that can never finish.
    s.child.kill('SIGKILL');
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await hub.close();
  }
});

test('http: idle sessions do not lock new clients out: 5 clients pinging every second, --max-sessions 5, a 6th is admitted', async () => {
  const s = await startHttpServer(['--model', TINY_CE, '--max-sessions', '5']);
  const clients = [];
  for (let i = 0; i < 5; i++) clients.push(await connectHttp(s.url));
  let pinging = true;
  const pingers = clients.map(async (c, i) => {
    await new Promise((r) => setTimeout(r, i * 200));
    while (pinging) {
      await c.ping().catch(() => undefined); // the one closed to make room gets 404 from then on
      await new Promise((r) => setTimeout(r, 1000));
    }
  });
  try {
    await new Promise((r) => setTimeout(r, 2500));
    const sixth = await connectHttp(s.url);
    const result = await sixth.callTool({ name: 'score_pair', arguments: { query: 'q', document: 'd' } });
    assert.notEqual(result.isError, true);
    await sixth.close();
    const closed = s.stderr().match(/closing HTTP session \S+, the least recently used \(last request \d+ s ago\), to admit a new client: 5 open \(--max-sessions\)/g) ?? [];
    assert.equal(closed.length, 1, s.stderr());
    assert.doesNotMatch(s.stderr(), /refused a new HTTP session/);
  } finally {
    pinging = false;
    await Promise.all(pingers);
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await s.stop();
  }
});

test('http: a session whose client cancelled its call is not busy once the call has stopped, so it can make room', async () => {
  const s = await startHttpServer(['--model', TINY_CE, '--max-sessions', '1', '--max-batch-tokens', '512']);
  const first = await connectHttp(s.url);
  try {
    const documents = Array.from({ length: 1000 }, (_, i) => `document ${i} about ranking passages for a search query`);
    const controller = new AbortController();
    const pending = first.callTool({ name: 'rerank', arguments: { query: 'q', documents } }, undefined, {
      signal: controller.signal,
      onprogress: () => controller.abort('test cancels'),
    });
    await assert.rejects(pending);
    // the SDK client keeps the POST stream open; the cancelled call has no answer to send
    const deadline = Date.now() + 20_000;
    let res = await raw(s.url, { body: INIT });
    while (res.status === 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      res = await raw(s.url, { body: INIT });
    }
    assert.equal(res.status, 200, `${res.body}\n${s.stderr()}`);
    assert.match(s.stderr(), /the least recently used/);
  } finally {
    await first.close().catch(() => undefined);
    await s.stop();
  }
});

test('http: at the default cap of 100 idle sessions, the 101st initialize closes the least recently used one', async () => {
  const s = await startHttpServer(['--model', TINY_CE]);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(await openSession(s.url));
    // the first session is used again, so the second is now the least recently used
    const headers = (id: string) => ({ 'mcp-session-id': id, 'mcp-protocol-version': '2025-06-18' });
    assert.equal((await raw(s.url, { headers: headers(ids[0]), body: { jsonrpc: '2.0', id: 2, method: 'ping' } })).status, 200);
    await openSession(s.url);
    assert.equal((await raw(s.url, { headers: headers(ids[1]), body: { jsonrpc: '2.0', id: 2, method: 'ping' } })).status, 404);
    assert.equal((await raw(s.url, { headers: headers(ids[0]), body: { jsonrpc: '2.0', id: 3, method: 'ping' } })).status, 200);
    assert.match(s.stderr(), new RegExp(`closing HTTP session ${ids[1].slice(0, 8)}…, the least recently used`));
  } finally {
    await s.stop();
  }
});

test('http: an idle session is reaped while another session has a call in flight', async () => {
  // The model download stalls, so a call waits in flight for as long as the test wants, without load on the CPU.
  const hub = await startFakeHub([singleCommitRepo('acme/tiny-ce', readDirFiles(TINY_CE))]);
  hub.faults.stallAfter.set('onnx/model.onnx', 1 << 10);
  const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: mkdtempSync(join(tmpdir(), 'rerank-hf-')) };
  const s = await startHttpServer(['--model', 'acme/tiny-ce', '--session-idle-seconds', '1'], env);
  const busy = await connectHttp(s.url);
  try {
    let settled = false;
    const pending = busy.callTool({ name: 'score_pair', arguments: { query: 'q', document: 'd' } }, undefined, { timeout: 120_000 }).finally(() => (settled = true));
    pending.catch(() => undefined);
    const idle = await openSession(s.url);
    const deadline = Date.now() + 30_000;
    while (!s.stderr().includes(`closing HTTP session ${idle.slice(0, 8)}`)) {
      assert.ok(Date.now() < deadline, `the idle session was never reaped:\n${s.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(settled, false, 'the busy call was still in flight when the idle session went');
    const gone = await raw(s.url, { headers: { 'mcp-session-id': idle, 'mcp-protocol-version': '2025-06-18' }, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
    assert.equal(gone.status, 404);
    // the busy session, silent for longer than the idle limit, is kept while its call runs
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(settled, false);
    const closedLines = s.stderr().match(/closing HTTP session/g) ?? [];
    assert.equal(closedLines.length, 1, s.stderr());
  } finally {
    // SIGKILL: a SIGTERM would wait out the drain timeout for the call that can never finish.
    s.child.kill('SIGKILL');
    await busy.close().catch(() => undefined);
    await hub.close();
  }
});

test('http: --allowed-hosts on a 0.0.0.0 bind: the named host with the token is served, a foreign host still refused', async () => {
  const token = 'a-long-enough-token-123';
  const s = await startHttpServer(['--model', TINY_CE, '--host', '0.0.0.0', '--allowed-hosts', 'rerank.box.test:8765, other.test'], { RERANK_MCP_TOKEN: token });
  const port = new URL(s.url).port;
  const url = `http://127.0.0.1:${port}/mcp`;
  const auth = { authorization: `Bearer ${token}` };
  try {
    await openSession(url, { ...auth, host: `rerank.box.test:${port}` });
    await openSession(url, { ...auth, host: 'other.test', origin: `http://rerank.box.test:${port}` });
    const foreign = await raw(url, { headers: { ...auth, host: `evil.test:${port}` }, body: INIT });
    assert.equal(foreign.status, 403);
    assert.match(foreign.body, /--allowed-hosts/);
    const foreignOrigin = await raw(url, { headers: { ...auth, host: `rerank.box.test:${port}`, origin: 'https://evil.test' }, body: INIT });
    assert.equal(foreignOrigin.status, 403);
    const noToken = await raw(url, { headers: { host: `rerank.box.test:${port}` }, body: INIT });
    assert.equal(noToken.status, 401);
  } finally {
    await s.stop();
  }
});

test('http: RERANK_ALLOWED_HOSTS is read from the environment', async () => {
  const s = await startHttpServer(['--model', TINY_CE], { RERANK_ALLOWED_HOSTS: 'named.test' });
  try {
    await openSession(s.url, { host: 'named.test' });
    assert.equal((await raw(s.url, { headers: { host: 'unnamed.test' }, body: INIT })).status, 403);
  } finally {
    await s.stop();
  }
});

test('http: a non-loopback bind refuses a short or whitespace token at start, in one line', async () => {
  for (const token of ['x', '   ', 'sixteen chars ok but spaced']) {
    const res = await runCli(['--http', '--host', '0.0.0.0', '--port', '0', '--model', TINY_CE], { env: { RERANK_MCP_TOKEN: token }, timeoutMs: 20_000 });
    assert.equal(res.code, 2, res.stderr);
    const lines = res.stderr.trim().split('\n');
    assert.equal(lines.length, 1, res.stderr);
    assert.match(lines[0], /refusing to listen on 0\.0\.0\.0 with a weak token/);
    assert.ok(!lines[0].includes('sixteen chars'), 'the token is not echoed');
  }
});

test('http: /healthz tells counts only to holders of the token', async () => {
  const token = 'healthz-token-0123456789';
  const s = await startHttpServer(['--model', TINY_CE], { RERANK_MCP_TOKEN: token });
  try {
    const anonymous = JSON.parse((await raw(s.url, { method: 'GET', path: '/healthz' })).body);
    assert.deepEqual(anonymous, { status: 'ok' });
    const wrong = JSON.parse((await raw(s.url, { method: 'GET', path: '/healthz', headers: { authorization: 'Bearer nope' } })).body);
    assert.deepEqual(wrong, { status: 'ok' });
    const holder = JSON.parse((await raw(s.url, { method: 'GET', path: '/healthz', headers: { authorization: `Bearer ${token}` } })).body);
    assert.equal(holder.status, 'ok');
    assert.equal(typeof holder.sessions, 'number');
    assert.equal(holder.max_sessions, 100);
  } finally {
    await s.stop();
  }
});

test('http: an oversized body gets 413 naming --max-body-mb', async () => {
  const s = await startHttpServer(['--model', TINY_CE, '--max-body-mb', '1']);
  try {
    const big = { ...INIT, params: { ...INIT.params, padding: 'x'.repeat(1_200_000) } };
    const res = await raw(s.url, { body: big });
    assert.equal(res.status, 413);
    assert.match(JSON.parse(res.body).error.message, /over the limit of 1 MiB \(--max-body-mb/);
  } finally {
    await s.stop();
  }
});
