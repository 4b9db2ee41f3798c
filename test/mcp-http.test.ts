/** The built server over Streamable HTTP: the SDK's Client, and raw requests for the guards. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { TINY_CE } from './helpers/fixtures.js';
import { connectHttp, startHttpServer, type HttpServerProcess } from './helpers/mcp.js';
import { runCli } from './helpers/run-cli.js';
import { checkBadInputs, checkModelInfo, checkRerank, checkScorePair, checkToolList } from './helpers/tool-checks.js';

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };

function raw(url: string, options: { method?: string; headers?: Record<string, string>; body?: unknown; path?: string }): Promise<{ status: number; body: string }> {
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
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
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
