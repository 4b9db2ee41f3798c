/**
 * Model rollout to replicas: two stateless replicas serve one model directory (a shared
 * volume); a promotion installs a new model into it with the same installer `finetune
 * --promote-to` uses; each replica's directory watch reloads it, and both answer with the new
 * model's reference logits and model_info; `rerank-mcp rollback` brings both back.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, TINY_CE, readParity, unpackedMiniLm, type MiniLmParity, type TinyParity } from './helpers/fixtures.js';
import { connectHttp, type HttpServerProcess } from './helpers/mcp.js';
import { sharedDb, startReplicas } from './helpers/replicas.js';
import { promoteModel } from '../src/commands/model-swap.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const minilm = readParity<MiniLmParity>('minilm-l6-ternary.json');
const [query, document] = minilm.pairs[0];
const tinyLogit = tiny.torch_logits[tiny.pairs.findIndex(([q, d]) => q === query && d === document)];
const minilmLogit = minilm.torch_logits[0];

let replicas: HttpServerProcess[] = [];
after(() => Promise.all(replicas.map((r) => r.stop())));

/**
 * The TEI route with raw_scores returns the logit. A reload holds the event loop for seconds,
 * past the server's keep-alive timeout, so the pooled socket may be closed under the next
 * request: that one is sent again on a new connection, as a client or balancer would.
 */
async function logitOn(replica: HttpServerProcess, retried = false): Promise<number> {
  const res = await once(replica).catch((err) => {
    if (retried || !/other side closed|ECONNRESET/.test(String(err.cause?.message ?? err.cause?.code))) throw err;
    return undefined;
  });
  if (res === undefined) return logitOn(replica, true);
  return res;
}

async function once(replica: HttpServerProcess): Promise<number> {
  const res = await fetch(new URL('/rerank', replica.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, texts: [document], raw_scores: true }) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { score: number }[])[0].score;
}

async function waitForLogit(expected: number, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (const replica of replicas) {
    let got = await logitOn(replica).catch((err) => {
      throw new Error(`${replica.url}: ${err.cause?.message ?? err.message}; exit ${replica.child.exitCode} ${replica.child.signalCode}; ${replica.stderr()}`);
    });
    while (Math.abs(got - expected) > 1e-4) {
      assert.ok(Date.now() < deadline, `${what}: replica ${replica.url} still answers ${got}, expected ${expected}`);
      await new Promise((r) => setTimeout(r, 200));
      got = await logitOn(replica);
    }
  }
}

async function modelFileOf(replica: HttpServerProcess): Promise<{ onnx_file: string; max_length: number; num_labels: number }> {
  const client = await connectHttp(replica.url);
  try {
    const info = (await client.callTool({ name: 'model_info', arguments: {} })) as { structuredContent: { onnx_file: string; max_length: number; num_labels: number } };
    return info.structuredContent;
  } finally {
    await client.close();
  }
}

test('rollout: a model promoted into the shared directory reaches both replicas; rollback reaches both too', async (t) => {
  assert.ok(Math.abs(tinyLogit - minilmLogit) > 0.05, 'the two models must score the pair differently');
  const dir = join(mkdtempSync(join(tmpdir(), 'rerank-rollout-')), 'served');
  cpSync(TINY_CE, dir, { recursive: true });
  replicas = await startReplicas(2, sharedDb(), ['--model', dir]);
  await waitForLogit(tinyLogit, 'before the promotion');

  const started = Date.now();
  promoteModel(unpackedMiniLm(), dir);
  await waitForLogit(minilmLogit, 'after the promotion');
  t.diagnostic(`both replicas served the promoted model ${Date.now() - started} ms after it was installed`);
  for (const replica of replicas) {
    const info = await modelFileOf(replica);
    // A promoted directory serves the version its `current` link points at.
    assert.ok(info.onnx_file.startsWith(join(dir, '.versions') + '/') && info.onnx_file.endsWith(join('onnx', 'model.onnx')), info.onnx_file);
    assert.match(replica.stderr(), /model reloaded \(model files changed\)/);
  }

  execFileSync(process.execPath, [CLI, 'rollback', dir], { stdio: 'pipe' });
  t.after(() => { for (const r of replicas) if (r.child.exitCode !== null) console.error(r.stderr()); });
  await waitForLogit(tinyLogit, 'after the rollback');
});
