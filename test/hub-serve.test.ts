/**
 * The server with --model naming a Hugging Face repo, against a local fake Hub: the MCP
 * handshake answers while the model downloads, a waiting call hears the download's progress,
 * and a second start makes no request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY_CE, readParity, type TinyParity } from './helpers/fixtures.js';
import { readDirFiles, singleCommitRepo, startFakeHub } from './helpers/fake-hub.js';
import { connectStdio } from './helpers/mcp.js';
import { call } from './helpers/tool-checks.js';
import { runCli } from './helpers/run-cli.js';

const tiny = readParity<TinyParity>('tiny-ce.json');

test('serve --model owner/name: handshake at once, download progress to a waiting call, cached afterwards', async (t) => {
  const hub = await startFakeHub([singleCommitRepo('acme/tiny-ce', readDirFiles(TINY_CE))]);
  const cache = mkdtempSync(join(tmpdir(), 'rerank-hf-'));
  const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache };
  try {
    // 1. the ONNX download stalls half way: the handshake must not wait for it
    hub.faults.stallAfter.set('onnx/model.onnx', 1 << 20);
    const started = Date.now();
    const stalled = await connectStdio(['--model', 'acme/tiny-ce'], env);
    const handshakeMs = Date.now() - started;
    const updates: { progress: number; total?: number; message?: string }[] = [];
    const controller = new AbortController();
    const pending = stalled.client.callTool({ name: 'score_pair', arguments: { query: 'q', document: 'd' } }, undefined, { signal: controller.signal, onprogress: (p) => updates.push(p) });
    const deadline = Date.now() + 20_000;
    while (!updates.some((u) => u.message?.includes('downloading onnx/model.onnx'))) {
      assert.ok(Date.now() < deadline, `no download progress: ${JSON.stringify(updates)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    controller.abort();
    await assert.rejects(pending);
    await stalled.close();
    t.diagnostic(`handshake answered in ${handshakeMs} ms while the model was downloading`);
    assert.ok(handshakeMs < 5000);
    hub.faults.stallAfter.clear();

    // 2. a full download, then a call that scores like the local fixture
    const conn = await connectStdio(['--model', 'acme/tiny-ce'], env);
    const res = (await call(conn.client, 'score_pair', { query: tiny.pairs[0][0], document: tiny.pairs[0][1] })).structuredContent as { model: string; results: { score: number }[] };
    assert.ok(Math.abs(res.results[0].score - tiny.st_predict_default[0]) < 1e-4);
    assert.ok(res.model.startsWith(join(cache, 'models--acme--tiny-ce', 'snapshots')), res.model);
    await conn.close();

    // 3. a second start (here the score CLI) makes no request at all
    const before = hub.requests.length;
    const again = await runCli(['score', '--model', 'acme/tiny-ce'], { stdin: JSON.stringify({ query: 'q', document: 'd' }) + '\n', env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(hub.requests.length, before, 'no request once cached');
    assert.match(again.stderr, /from the cache/);
  } finally {
    await hub.close();
  }
});

test('offline without a cache: one clear line naming the model, the cache path and --model <dir>', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'rerank-hf-'));
  const res = await runCli(['score'], { stdin: '', env: { HF_HUB_OFFLINE: '1', HF_HUB_CACHE: cache } });
  assert.notEqual(res.code, 0);
  const errors = res.stderr.trim().split('\n').filter((l) => /error/i.test(l));
  assert.equal(errors.length, 1, res.stderr);
  assert.match(errors[0], /cross-encoder\/ms-marco-MiniLM-L6-v2/);
  assert.ok(errors[0].includes(cache), errors[0]);
  assert.match(errors[0], /--model <dir>/);
});
