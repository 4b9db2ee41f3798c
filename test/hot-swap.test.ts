/**
 * The model is swapped under traffic: tiny-ce's ONNX file is replaced by one with other
 * weights (the MiniLM-shaped fixture), by SIGHUP and by the directory watcher. No call may
 * fail, and later scores must be the new model's reference logits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY_CE, readParity, unpackedMiniLm, type MiniLmParity, type TinyParity } from './helpers/fixtures.js';
import { connectStdio } from './helpers/mcp.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const minilm = readParity<MiniLmParity>('minilm-l6-ternary.json');
const [query, document] = minilm.pairs[0];
const tinyLogit = tiny.torch_logits[tiny.pairs.findIndex(([q, d]) => q === query && d === document)];
const minilmLogit = minilm.torch_logits[0];

/** Replaces onnx/model.onnx the way a deploy should: a full copy beside it, then an atomic rename. */
function swapIn(dir: string, source: string): void {
  const staged = join(dir, 'onnx', '.model.onnx.staged');
  copyFileSync(source, staged);
  renameSync(staged, join(dir, 'onnx', 'model.onnx'));
}

test('hot swap under traffic: no call fails, later scores come from the new model', async (t) => {
  assert.ok(Math.abs(tinyLogit - minilmLogit) > 0.05, 'the two models must score the pair differently');
  const dir = join(mkdtempSync(join(tmpdir(), 'rerank-swap-')), 'model');
  cpSync(TINY_CE, dir, { recursive: true });
  // In process: it reads the reload lines from the server's own stderr (the shared daemon logs to its file).
  const conn = await connectStdio(['--model', dir, '--standalone']);
  const logits: number[] = [];
  let failures = 0;
  let stop = false;
  const traffic = async () => {
    while (!stop) {
      const res = (await conn.client.callTool({ name: 'score_pair', arguments: { query, document } })) as { isError?: boolean; structuredContent?: { results: { logit: number }[] } };
      if (res.isError) failures++;
      else logits.push(res.structuredContent!.results[0].logit);
    }
  };
  const waitFor = async (expected: number, what: string) => {
    const deadline = Date.now() + 30_000;
    while (logits.length === 0 || Math.abs(logits.at(-1)! - expected) > 1e-4) {
      assert.ok(Date.now() < deadline, `${what}: last logit ${logits.at(-1)}, expected ${expected}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    const loops = [traffic(), traffic()];
    // The model loads after the handshake; on a busy machine that can take seconds.
    await waitFor(tinyLogit, 'before any swap');

    // 1. SIGHUP after the file changed (watcher would also fire: either way one switch)
    swapIn(dir, join(unpackedMiniLm(), 'onnx', 'model.onnx'));
    process.kill(conn.pid!, 'SIGHUP');
    await waitFor(minilmLogit, 'after SIGHUP');

    // 2. the watcher alone, swapping back
    const countBefore = logits.length;
    swapIn(dir, join(TINY_CE, 'onnx', 'model.onnx'));
    await waitFor(tinyLogit, 'after the watcher saw the change');
    t.diagnostic(`${logits.length} calls, ${logits.length - countBefore} after the second swap`);

    stop = true;
    await Promise.all(loops);
    assert.equal(failures, 0);
    // every answer came from one model or the other, never from a half-loaded one
    for (const l of logits) assert.ok(Math.abs(l - tinyLogit) < 1e-4 || Math.abs(l - minilmLogit) < 1e-4, `unexpected logit ${l}`);
    assert.match(conn.stderr(), /model reloaded \(SIGHUP\)/);
    assert.match(conn.stderr(), /model reloaded \(model files changed\)/);
  } finally {
    stop = true;
    await conn.close();
  }
});

test('a promotion and a rollback into a plain directory the server watches: it follows DIR/current', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'rerank-swap-')), 'model');
  cpSync(TINY_CE, dir, { recursive: true });
  const conn = await connectStdio(['--model', dir, '--standalone']);
  const score = async () => {
    const res = (await conn.client.callTool({ name: 'score_pair', arguments: { query, document } })) as { isError?: boolean; structuredContent?: { results: { logit: number }[] } };
    assert.ok(!res.isError, JSON.stringify(res));
    return res.structuredContent!.results[0].logit;
  };
  const waitFor = async (expected: number, what: string) => {
    const deadline = Date.now() + 30_000;
    let last = await score();
    while (Math.abs(last - expected) > 1e-4) {
      assert.ok(Date.now() < deadline, `${what}: last logit ${last}, expected ${expected}`);
      await new Promise((r) => setTimeout(r, 100));
      last = await score();
    }
  };
  try {
    await waitFor(tinyLogit, 'before the promotion');
    const { promoteModel, rollbackModel } = await import('../src/commands/model-swap.js');
    promoteModel(unpackedMiniLm(), dir);
    await waitFor(minilmLogit, 'after the promotion');
    rollbackModel(dir);
    await waitFor(tinyLogit, 'after the rollback');
    assert.match(conn.stderr(), /model reloaded \(model files changed\)/);
  } finally {
    await conn.close();
  }
});
