/**
 * /healthz and /readyz as load balancers and Kubernetes call them: raw HTTP/1.0 without Host, a
 * pod IP as Host, no token; they learn up/ready and nothing else, while /mcp keeps its guards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY_CE } from './helpers/fixtures.js';
import { startHttpServer } from './helpers/mcp.js';
import { readDirFiles, singleCommitRepo, startFakeHub } from './helpers/fake-hub.js';
import { postgresSkip, startPostgres } from './helpers/postgres.js';

interface RawHttp {
  status: number;
  headers: string;
  body: string;
}

/** Sends the request text as it is (HTTP/1.0, any or no Host) and reads until the server closes. */
function rawHttp(url: string, text: string): Promise<RawHttp> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    // write, not end: a half-closed socket makes Node drop a response that is still being computed
    const socket = connect(Number(port), hostname, () => socket.write(text));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (data += d));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body: rest.join('\r\n\r\n') });
    });
  });
}

const get = (url: string, path: string, headers: string[] = [], version = '1.0') => rawHttp(url, `GET ${path} HTTP/${version}\r\n${headers.map((h) => h + '\r\n').join('')}\r\n`);

async function until<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    assert.ok(Date.now() < deadline, `${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('health: probes with no Host (HTTP/1.0 and 1.1) or a pod IP get 200 and learn nothing; /mcp still refuses them', async () => {
  const s = await startHttpServer(['--model', TINY_CE]);
  try {
    await until('ready', () => get(s.url, '/readyz'), (r) => r.status === 200);
    for (const headers of [[], ['Host: 10.244.1.17:8765'], ['Host: 10.244.1.17', 'Origin: http://evil.example']]) {
      for (const version of ['1.0', '1.1']) {
        const extra = version === '1.1' ? [...headers, 'Connection: close'] : headers;
        const health = await get(s.url, '/healthz', extra, version);
        assert.equal(health.status, 200, `${version} ${headers}: ${health.headers}`);
        assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
        const ready = await get(s.url, '/readyz', extra, version);
        assert.equal(ready.status, 200, `${version} ${headers}: ${ready.headers}`);
        assert.deepEqual(JSON.parse(ready.body), { status: 'ready' });
      }
      const mcp = await rawHttp(s.url, `POST /mcp HTTP/1.0\r\n${headers.map((h) => h + '\r\n').join('')}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
      assert.equal(mcp.status, 403, mcp.headers);
    }
    // a local caller (no token set) gets the details, as before
    const local = JSON.parse((await get(s.url, '/healthz', [`Host: 127.0.0.1:${new URL(s.url).port}`])).body);
    assert.equal(local.model_loaded, true);
    assert.equal(typeof local.sessions, 'number');
  } finally {
    await s.stop();
  }
});

test('health: with a token, details only for its holders, whatever the Host', async () => {
  const token = 'health-probe-token-0123456789';
  const s = await startHttpServer(['--model', TINY_CE], { RERANK_MCP_TOKEN: token });
  try {
    const anonymous = await get(s.url, '/healthz', ['Host: 10.0.0.5']);
    assert.deepEqual(JSON.parse(anonymous.body), { status: 'ok' });
    const holder = JSON.parse((await get(s.url, '/healthz', ['Host: 10.0.0.5', `Authorization: Bearer ${token}`])).body);
    assert.equal(holder.max_sessions, 100);
    const mcp = await rawHttp(s.url, `POST /mcp HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
    assert.equal(mcp.status, 401);
  } finally {
    await s.stop();
  }
});

test('readyz: 503 until the model is loaded, and while the feedback database cannot be reached; the reason only to trusted callers', async () => {
  const hub = await startFakeHub([singleCommitRepo('acme/tiny-ce', readDirFiles(TINY_CE))]);
  hub.faults.stallAfter.set('onnx/model.onnx', 1 << 10);
  const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: mkdtempSync(join(tmpdir(), 'rerank-hf-')) };
  const loading = await startHttpServer(['--model', 'acme/tiny-ce'], env);
  try {
    const anonymous = await get(loading.url, '/readyz', ['Host: 10.0.0.5']);
    assert.equal(anonymous.status, 503);
    assert.deepEqual(JSON.parse(anonymous.body), { status: 'not ready' });
    const local = await get(loading.url, '/readyz', ['Host: localhost']);
    assert.equal(local.status, 503);
    assert.match(JSON.parse(local.body).model, /not loaded yet \((loading|idle)\)/);
    assert.equal((await get(loading.url, '/healthz')).status, 200, 'alive while not ready');
  } finally {
    loading.child.kill('SIGKILL');
    await hub.close();
  }

  // --db inside a regular file: the server runs (reranking needs no database) but is not ready
  const dir = mkdtempSync(join(tmpdir(), 'rerank-readyz-'));
  writeFileSync(join(dir, 'not-a-dir'), '');
  const db = join(dir, 'not-a-dir', 'feedback.db');
  const s = await startHttpServer(['--model', TINY_CE], { RERANK_FEEDBACK_DB: db });
  try {
    const res = await until('model loaded, store still failing', () => get(s.url, '/readyz', ['Host: localhost']), (r) => !('model' in JSON.parse(r.body)));
    assert.equal(res.status, 503);
    assert.ok(JSON.parse(res.body).store.includes(join(dir, 'not-a-dir')), res.body);
    assert.deepEqual(JSON.parse((await get(s.url, '/readyz')).body), { status: 'not ready' });
  } finally {
    await s.stop();
  }
});

test('readyz: a database locked by another process makes it 503 within its deadline, while /healthz keeps answering', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rerank-readyz-lock-'));
  const db = join(dir, 'feedback.db');
  // Another process holds an exclusive lock: opening and reading the file would wait on it.
  const holder = spawn('python3', ['-c', `import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute('CREATE TABLE IF NOT EXISTS t (x)'); c.execute('BEGIN EXCLUSIVE'); c.execute('INSERT INTO t VALUES (1)')
print('locked', flush=True); time.sleep(120)`, db], { stdio: ['ignore', 'pipe', 'inherit'] });
  const spawned = await new Promise<boolean>((resolve) => {
    holder.once('error', () => resolve(false));
    holder.once('exit', () => resolve(false));
    holder.stdout.once('data', () => resolve(true));
  });
  if (!spawned) {
    t.skip('python3 with sqlite3 is not available');
    return;
  }
  const s = await startHttpServer(['--model', TINY_CE], { RERANK_FEEDBACK_DB: db });
  try {
    await until('model loaded', () => get(s.url, '/healthz', ['Host: localhost']), (r) => JSON.parse(r.body).model_loaded === true);
    const started = Date.now();
    const ready = get(s.url, '/readyz', ['Host: localhost']);
    // the probe waits on the lock in a worker: the event loop, and so /healthz, does not
    const health = await get(s.url, '/healthz');
    const healthMs = Date.now() - started;
    const res = await ready;
    const readyMs = Date.now() - started;
    assert.equal(health.status, 200);
    assert.equal(res.status, 503, res.body);
    assert.match(JSON.parse(res.body).store, new RegExp(`feedback database ${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*(locked|did not answer)`));
    assert.ok(healthMs < readyMs, `/healthz took ${healthMs} ms, /readyz ${readyMs} ms`);
    assert.ok(readyMs < 10_000, `/readyz took ${readyMs} ms`);
  } finally {
    holder.kill('SIGKILL');
    await s.stop();
  }
});

test('readyz: a PostgreSQL store that cannot be reached makes it 503, naming the server with the password masked', async () => {
  const s = await startHttpServer(['--model', TINY_CE], { RERANK_FEEDBACK_DB: 'postgres://rerank:s3cret-pw@127.0.0.1:1/team' });
  try {
    const res = await until('model loaded, store unreachable', () => get(s.url, '/readyz', ['Host: localhost']), (r) => r.status === 503 && !('model' in JSON.parse(r.body)));
    const store = JSON.parse(res.body).store as string;
    assert.match(store, /127\.0\.0\.1:1/);
    assert.ok(!store.includes('s3cret-pw'), store);
    assert.equal((await get(s.url, '/healthz')).status, 200);
    assert.ok(!s.stderr().includes('s3cret-pw'), 'the password never appears in logs');
  } finally {
    await s.stop();
  }
});

test('readyz follows a real PostgreSQL store: ready while it answers, 503 while it is down, ready again once it is back', { skip: postgresSkip() }, async () => {
  const pgServer = await startPostgres();
  const db = await pgServer.createDatabase('readyz');
  const s = await startHttpServer(['--model', TINY_CE], { RERANK_FEEDBACK_DB: db });
  try {
    await until('ready', () => get(s.url, '/readyz', ['Host: localhost']), (r) => r.status === 200);
    pgServer.stop();
    const down = await until('not ready with PostgreSQL down', () => get(s.url, '/readyz', ['Host: localhost']), (r) => r.status === 503);
    assert.match(JSON.parse(down.body).store, new RegExp(`127\\.0\\.0\\.1:${pgServer.port}`));
    pgServer.start();
    await until('ready again', () => get(s.url, '/readyz', ['Host: localhost']), (r) => r.status === 200);
  } finally {
    await s.stop();
    pgServer.destroy();
  }
});
