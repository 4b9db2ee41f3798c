/**
 * The default model with no network and an empty cache, as a new user offline meets it: the
 * server answers the handshake whatever the framing, each call that needs the model fails
 * with one line naming the model and --model, model_info says why, the process stays up, and
 * a later call loads the model once it is there. Also: no reply is lost when a client writes
 * several messages at once, and a JSON-RPC batch array is answered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { freePort } from './helpers/net.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, TINY_CE } from './helpers/fixtures.js';
import { connectHttp, freshDbPath, startHttpServer } from './helpers/mcp.js';

const DEFAULT_MODEL = 'cross-encoder/ms-marco-MiniLM-L6-v2';
const initialize = (id: number, protocolVersion = '2025-06-18') => ({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '0' } } });
const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };
const scorePair = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'score_pair', arguments: { query: 'q', document: 'd' } } });
const modelInfo = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'model_info', arguments: {} } });

/** A stdio server driven by raw writes, so several messages can go out in one write. */
function rawServer(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RERANK_FEEDBACK_DB: freshDbPath(), ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let exitCode: number | null | undefined;
  child.on('exit', (code) => (exitCode = code));
  const replies = () => stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { id?: unknown; result?: any; error?: any });
  return {
    child,
    /** One write, one chunk for the server: the messages arrive in a single read. */
    write: (...messages: unknown[]) => child.stdin.write(messages.map((m) => JSON.stringify(m) + '\n').join('')),
    stderr: () => stderr,
    alive: () => exitCode === undefined,
    replies,
    waitFor: async (id: unknown, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = replies().find((r) => r.id === id);
        if (found) return found;
        assert.ok(Date.now() < deadline, `no reply to id ${JSON.stringify(id)} (exit ${exitCode}); stdout: ${stdout}; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: async () => {
      child.stdin.end();
      if (exitCode === undefined) await new Promise((r) => child.on('exit', r));
    },
  };
}

const emptyCache = () => mkdtempSync(join(tmpdir(), 'rerank-hf-empty-'));


/** Puts the tiny fixture into the HF cache as if the default model had been downloaded. */
function cacheDefaultModel(cache: string): void {
  const repo = join(cache, `models--${DEFAULT_MODEL.replace('/', '--')}`);
  const commit = 'a'.repeat(40);
  const snapshot = join(repo, 'snapshots', commit);
  mkdirSync(join(snapshot, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'onnx/model.onnx']) copyFileSync(join(TINY_CE, f), join(snapshot, f));
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), commit);
}

function assertModelError(reply: { result?: any }, offline: boolean): string {
  assert.equal(reply.result?.isError, true, JSON.stringify(reply));
  const text: string = reply.result.content[0].text;
  assert.ok(!text.includes('\n'), `one line: ${text}`);
  assert.ok(text.includes(DEFAULT_MODEL), text);
  assert.match(text, /--model <dir>/);
  assert.match(text, offline ? /HF_HUB_OFFLINE is set/ : /HF_HUB_OFFLINE is not set/);
  return text;
}

test('offline, empty cache: initialize, initialized and a call in one write are all answered; the server stays up and retries', async () => {
  const cache = emptyCache();
  const s = rawServer([], { HF_HUB_OFFLINE: '1', HF_HUB_CACHE: cache });
  try {
    s.write(initialize(1), INITIALIZED, scorePair(2));
    const init = await s.waitFor(1);
    assert.equal(init.result.serverInfo.name, 'rerank-mcp');
    assert.ok(assertModelError(await s.waitFor(2), true).includes(cache), 'names the cache');

    s.write(scorePair(3));
    assertModelError(await s.waitFor(3), true);
    s.write(modelInfo(4));
    const info = (await s.waitFor(4)).result;
    assert.notEqual(info.isError, true);
    assert.equal(info.structuredContent.state, 'failed');
    assert.equal(info.structuredContent.model, DEFAULT_MODEL);
    assert.match(info.structuredContent.error, /--model <dir>/);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(s.alive(), `the server is still running; stderr: ${s.stderr()}`);

    // The model arrives (here: put into the cache); the next call loads it without a restart.
    cacheDefaultModel(cache);
    s.write(scorePair(5));
    const scored = (await s.waitFor(5)).result;
    assert.notEqual(scored.isError, true, JSON.stringify(scored));
    assert.equal(typeof scored.structuredContent.results[0].score, 'number');
    s.write(modelInfo(6));
    assert.equal((await s.waitFor(6)).result.structuredContent.state, 'ready');
  } finally {
    await s.stop();
  }
});

test('unreachable Hub, empty cache: the call fails with one line naming the model, the cache and --model; the process lives', async () => {
  const cache = emptyCache();
  const s = rawServer([], { HF_HUB_CACHE: cache, HF_ENDPOINT: `http://127.0.0.1:${await freePort()}`, HF_HUB_OFFLINE: '' });
  try {
    s.write(initialize(1));
    await s.waitFor(1);
    s.write(INITIALIZED, scorePair(2));
    const text = assertModelError(await s.waitFor(2), false);
    assert.ok(text.includes(cache), text);
    assert.doesNotMatch(text, /set HF_HUB_OFFLINE=1/, 'offline mode cannot help with an empty cache');
    s.write(scorePair(3));
    assertModelError(await s.waitFor(3), false);
    assert.ok(s.alive());
  } finally {
    await s.stop();
  }
});

test('a local model: initialize, initialized and a call in one write get both replies', async () => {
  const s = rawServer(['--model', TINY_CE], {});
  try {
    s.write(initialize(1), INITIALIZED, scorePair(2));
    assert.equal((await s.waitFor(1)).result.serverInfo.name, 'rerank-mcp');
    assert.equal(typeof (await s.waitFor(2)).result.structuredContent.results[0].score, 'number');
  } finally {
    await s.stop();
  }
});

test('a JSON-RPC batch array gets an Invalid Request error per request id (2025-06-18), or is handled one by one (2025-03-26)', async () => {
  // In process, since it counts the server's own log lines; the 2025-03-26 half runs through the shared daemon.
  const s = rawServer(['--model', TINY_CE, '--standalone'], {});
  try {
    s.write(initialize(1), INITIALIZED);
    await s.waitFor(1);
    s.write([{ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { jsonrpc: '2.0', id: 'three', method: 'ping' }, INITIALIZED]);
    for (const id of [2, 'three']) {
      const reply = await s.waitFor(id);
      assert.equal(reply.error?.code, -32600, JSON.stringify(reply));
      assert.match(reply.error.message, /batch/);
    }
    s.write([INITIALIZED]);
    assert.equal((await s.waitFor(null)).error.code, -32600, 'a batch without requests gets one error with id null');
    assert.equal(s.stderr().match(/batch/g)?.length, 2, `one log line per batch: ${s.stderr()}`);
    s.write(scorePair(4));
    assert.equal(typeof (await s.waitFor(4)).result.structuredContent.results[0].score, 'number');
  } finally {
    await s.stop();
  }
  const old = rawServer(['--model', TINY_CE], {});
  try {
    old.write(initialize(1, '2025-03-26'), INITIALIZED);
    assert.equal((await old.waitFor(1)).result.protocolVersion, '2025-03-26');
    old.write([{ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { jsonrpc: '2.0', id: 3, method: 'ping' }]);
    assert.equal((await old.waitFor(2)).result.tools.length, 4);
    assert.deepEqual((await old.waitFor(3)).result, {});
  } finally {
    await old.stop();
  }
});

test('over HTTP too: offline with an empty cache, the server keeps serving and each call says why', async () => {
  const cache = emptyCache();
  const server = await startHttpServer([], { HF_HUB_OFFLINE: '1', HF_HUB_CACHE: cache });
  try {
    const client = await connectHttp(server.url);
    for (let i = 0; i < 2; i++) {
      const res = (await client.callTool({ name: 'rerank', arguments: { query: 'q', documents: ['d'] } })) as { isError?: boolean; content: { text: string }[] };
      assertModelError({ result: res }, true);
    }
    const info = (await client.callTool({ name: 'model_info', arguments: {} })).structuredContent as { state: string };
    assert.equal(info.state, 'failed');
    assert.equal(server.child.exitCode, null, 'still running');
    await client.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
