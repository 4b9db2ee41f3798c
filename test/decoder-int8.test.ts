/**
 * --variant int8 with prefix reuse: onnx/model_past_quantized.onnx (python/decoder_past.py
 * quantize_past) beside onnx/model_quantized.onnx, on the qwen3-tiny and mxbai-v2-tiny fixtures.
 *
 * int8 is not exact, so these are not the 1e-4 parity tests of test/decoder.test.ts. Dynamic
 * quantization scales each activation tensor by its own range, and a split run (prefix, then
 * suffixes) quantizes other tensors than a whole one: its logits differ from the int8 plain graph's
 * by quantization noise, as the int8 plain graph's differ from fp32. So the prefix path is held to
 * the plain int8 path's own error against the fp32 (PyTorch) references: what it would cost a user
 * to choose int8 at all. The tiny fixtures' random weights (initializer range 0.3) make that noise
 * large: measured max |Δlogit| vs fp32, prefix / plain: qwen3 0.17 / 0.23 and 0.17 / 0.17, mxbai
 * 1.01 / 1.07 and 0.50 / 0.35; rank correlation with fp32 0.987 / 0.977, 0.988 / 0.984, 0.969 /
 * 0.973, 0.771 / 0.770. Neither path keeps fp32's exact top 5 on these fixtures (int8 plain: 0 of
 * 15 twenty-document calls), so top-5 agreement is measured on the bench model
 * (scripts/bench-decoder.ts, docs/decoder-speed.md), whose weights have a realistic scale.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import type { EncodedPair } from '../src/model/onnx-session.js';
import { maxAbsDiff, REPO_ROOT } from './helpers/fixtures.js';

interface Refs {
  max_length: number;
  input_ids: (number[] | null)[];
  logits: (number | null)[];
}

const fixture = (name: string) => ({
  dir: join(REPO_ROOT, 'test', 'fixtures', name),
  parity: JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', `${name}-parity.json`), 'utf8')) as Record<string, Refs>,
});

/** Python's ids of every pair with tokens, each told the prefix all of them share (as the engine marks it). */
function shared(refs: Refs): { pairs: EncodedPair[]; want: number[] } {
  const rows = refs.input_ids.flatMap((ids, i) => (ids ? [{ ids, logit: refs.logits[i]! }] : []));
  let p = Math.min(...rows.map((r) => r.ids.length));
  for (const r of rows) for (let i = 0; i < p; i++) if (r.ids[i] !== rows[0].ids[i]) p = i;
  return { pairs: rows.map((r) => ({ inputIds: r.ids, typeIds: r.ids.map(() => 0), prefixLength: p })), want: rows.map((r) => r.logit) };
}

async function logitsInBatchesOf16(model: CrossEncoder, pairs: EncodedPair[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < pairs.length; i += 16) {
    const batch = pairs.slice(i, i + 16);
    const { logits, labels } = await model.session.run(batch);
    for (let r = 0; r < batch.length; r++) out.push(logits[r * labels]);
  }
  return out;
}

function spearman(a: number[], b: number[]): number {
  const ranks = (x: number[]) => {
    const r = new Array<number>(x.length);
    x.map((v, i) => [v, i]).sort((u, v) => u[0] - v[0]).forEach(([, i], k) => (r[i] = k));
    return r;
  };
  const [ra, rb] = [ranks(a), ranks(b)];
  const n = a.length;
  const d2 = ra.reduce((s, v, i) => s + (v - rb[i]) ** 2, 0);
  return 1 - (6 * d2) / (n * (n * n - 1));
}

for (const [name, keys] of [
  ['qwen3-tiny', ['qwen3_reranker', 'qwen3_reranker_instruction']],
  ['mxbai-v2-tiny', ['mxbai_rerank_v2', 'mxbai_rerank_v2_instruction']],
] as const) {
  const fx = fixture(name);
  describe(`${name} --variant int8: prefix reuse through onnx/model_past_quantized.onnx`, () => {
    let model: CrossEncoder;
    let plain: CrossEncoder;
    before(async () => {
      model = await CrossEncoder.load({ model: fx.dir, variant: 'int8', maxLength: 512 });
      plain = await CrossEncoder.load({ model: fx.dir, variant: 'int8', maxLength: 512, prefixReuse: 'off' });
    });
    after(async () => {
      await model.release();
      await plain.release();
    });

    test('model_info names the quantized prefix graph; --prefix-reuse off serves the plain int8 graph', () => {
      const info = model.info();
      assert.equal(info.variant, 'int8');
      assert.match(info.onnx_file, /model_quantized\.onnx$/);
      assert.equal(info.inference, 'prefix-reuse');
      assert.match(info.prefix_graph!, /onnx[/\\]model_past_quantized\.onnx$/);
      assert.equal(plain.info().inference, 'plain');
      assert.equal(plain.session.prefixGraph, undefined);
    });

    for (const key of keys) {
      test(`${key}: every batch through the prefix graph, the prefix once; logits and ranking as close to fp32 as the plain int8 graph's`, async () => {
        const { pairs, want } = shared(fx.parity[key]);
        assert.ok(pairs[0].prefixLength! >= 20, `the pairs share ${pairs[0].prefixLength} leading ids`);
        const graph = model.session.prefixGraph!;
        const before = { ...graph.counters };
        const got = await logitsInBatchesOf16(model, pairs);
        assert.equal(graph.counters.batches - before.batches, Math.ceil(pairs.length / 16), 'every batch went through the prefix graph');
        assert.ok(graph.counters.prefixRuns - before.prefixRuns <= 1, 'the shared prefix ran at most once');
        const ref = await logitsInBatchesOf16(plain, pairs);
        const [dPrefix, dPlain] = [maxAbsDiff(got, want), maxAbsDiff(ref, want)];
        assert.ok(dPrefix <= 2 * dPlain, `max |Δlogit| vs fp32: prefix path ${dPrefix}, plain int8 ${dPlain}`);
        assert.ok(maxAbsDiff(got, ref) > 0, 'the split run quantizes other tensors than the whole one: not the plain graph by another name');
        const [rPrefix, rPlain] = [spearman(got, want), spearman(ref, want)];
        assert.ok(rPrefix >= rPlain - 0.02, `rank correlation with fp32: prefix path ${rPrefix}, plain int8 ${rPlain}`);
      });
    }
  });
}

test('--variant int8 without model_past_quantized.onnx serves the plain int8 graph, with no warning', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'int8-no-past-'));
  try {
    cpSync(join(REPO_ROOT, 'test', 'fixtures', 'qwen3-tiny'), dir, { recursive: true });
    rmSync(join(dir, 'onnx', 'model_past_quantized.onnx'));
    const logged: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => (logged.push(String(chunk)), write(chunk, ...rest))) as typeof process.stderr.write;
    let model: CrossEncoder;
    try {
      model = await CrossEncoder.load({ model: dir, variant: 'int8', maxLength: 512 });
    } finally {
      process.stderr.write = write;
    }
    try {
      assert.equal(model.info().inference, 'plain');
      assert.equal(model.info().prefix_graph, undefined);
      assert.deepEqual(logged.filter((l) => /warning/.test(l)), []);
      const { pairs } = shared(fixture('qwen3-tiny').parity.qwen3_reranker);
      const { logits } = await model.session.run(pairs.slice(0, 4));
      assert.ok([...logits].every(Number.isFinite));
    } finally {
      await model.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
