/**
 * Scores and token ids against test/fixtures/parity, produced by PyTorch,
 * sentence-transformers and onnxruntime (Python) on the same checkpoints.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { ScoringEngine, DEFAULT_ENGINE_OPTIONS } from '../src/engine/scoring-engine.js';
import { maxAbsDiff, readParity, TINY_CE, unpackedMiniLm, type MiniLmParity, type TinyParity } from './helpers/fixtures.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const minilm = readParity<MiniLmParity>('minilm-l6-ternary.json');
const pairsOf = (pairs: [string, string][]) => pairs.map(([query, document]) => ({ query, document }));

let engine: ScoringEngine;
before(async () => {
  engine = new ScoringEngine(await CrossEncoder.load({ model: TINY_CE, variant: 'fp32' }), DEFAULT_ENGINE_OPTIONS);
});
after(() => engine.model.release());

test('tiny-ce: token ids and type ids equal the Python tokenizer for all 428 pairs', () => {
  assert.equal(tiny.pairs.length, 428);
  tiny.pairs.forEach(([q, d], i) => {
    const enc = engine.model.encode(q, d);
    assert.deepEqual(enc.inputIds, tiny.tokens[i].input_ids, `input_ids of pair ${i}`);
    assert.deepEqual(enc.typeIds, tiny.tokens[i].token_type_ids, `token_type_ids of pair ${i}`);
  });
});

test('tiny-ce: scores equal CrossEncoder.predict (Identity activation from config.json)', async () => {
  assert.equal(engine.model.activation, 'identity');
  const scores = await engine.scorePairs(pairsOf(tiny.pairs));
  assert.ok(maxAbsDiff(scores.map((s) => s.score), tiny.st_predict_default) < 1e-4);
  assert.ok(maxAbsDiff(scores.map((s) => s.logit), tiny.torch_logits) < 1e-4);
  assert.ok(maxAbsDiff(scores.map((s) => s.score), tiny.st_predict_identity) < 1e-4);
});

test('tiny-ce: forcing sigmoid gives predict(activation_fn=Sigmoid)', async () => {
  const model = await CrossEncoder.load({ model: TINY_CE, variant: 'fp32', activation: 'sigmoid' });
  try {
    const scores = await new ScoringEngine(model).scorePairs(pairsOf(tiny.pairs));
    assert.ok(maxAbsDiff(scores.map((s) => s.score), tiny.st_predict_sigmoid) < 1e-4);
  } finally {
    await model.release();
  }
});

test('tiny-ce: rerank order equals CrossEncoder.rank', async () => {
  const { query, documents, result } = tiny.st_rank;
  const ranked = await engine.rerank(query, documents);
  assert.deepEqual(
    ranked.map((r) => r.index),
    result.map((r) => r.corpus_id),
  );
  assert.ok(maxAbsDiff(ranked.map((r) => r.score), result.map((r) => r.score)) < 1e-4);
});

test('minilm-l6 fp32: logits within 1e-4 of PyTorch', async () => {
  const model = await CrossEncoder.load({ model: unpackedMiniLm(), variant: 'fp32' });
  try {
    const scores = await new ScoringEngine(model).scorePairs(pairsOf(minilm.pairs));
    const diff = maxAbsDiff(scores.map((s) => s.logit), minilm.torch_logits);
    assert.ok(diff < 1e-4, `max diff ${diff}`);
    // no activation in config.json: a one-label CrossEncoder applies a sigmoid
    assert.equal(model.activation, 'sigmoid');
    scores.forEach((s) => assert.ok(Math.abs(s.score - 1 / (1 + Math.exp(-s.logit))) < 1e-12));
  } finally {
    await model.release();
  }
});

test('minilm-l6 int8: logits within 1e-3 of onnxruntime (Python) batched as it was', async () => {
  const model = await CrossEncoder.load({ model: unpackedMiniLm(), variant: 'int8' });
  try {
    const engineInt8 = new ScoringEngine(model);
    // Dynamic quantization scales each batch by its own range: the reference ran input-order batches of 16.
    const scores = await engineInt8.scoreInInputOrder(pairsOf(minilm.pairs), 16);
    const diff = maxAbsDiff(scores.map((s) => s.logit), minilm.ort_python_int8_logits);
    assert.ok(diff < 1e-3, `max diff ${diff}`);
    // Length-sorted batching changes int8 scores only at the quantization-noise level.
    const sorted = await engineInt8.scorePairs(pairsOf(minilm.pairs));
    assert.ok(maxAbsDiff(sorted.map((s) => s.logit), minilm.ort_python_int8_logits) < 1e-2);
  } finally {
    await model.release();
  }
});
