/**
 * The engine in-process on the real tiny-ce session: the shared batching queue (sharing,
 * fairness across calls, cancellation, error isolation), the per-call token budget, the
 * score cache and repeated documents.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { DEFAULT_ENGINE_OPTIONS, ScoringEngine } from '../src/engine/scoring-engine.js';
import { ScoreCache } from '../src/engine/score-cache.js';
import { BatchQueue } from '../src/engine/batch-queue.js';
import { planBatches } from '../src/engine/batch-plan.js';
import { EngineHost } from '../src/engine/engine-host.js';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maxAbsDiff, readParity, TINY_CE, unpackedMiniLm, type TinyParity } from './helpers/fixtures.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const pairs = tiny.pairs.map(([query, document]) => ({ query, document }));
let model: CrossEncoder;

before(async () => {
  model = await CrossEncoder.load({ model: TINY_CE, variant: 'fp32' });
});
after(() => model.release());

test('planBatches sorts by length and keeps every batch under the token budget', () => {
  const items = [5, 100, 7, 50, 50, 3, 400, 9].map((length, id) => ({ length, id }));
  const batches = planBatches(items, 120);
  assert.deepEqual(batches.map((b) => b.map((i) => i.length)), [[3, 5, 7, 9], [50, 50], [100], [400]]);
  for (const b of batches) assert.ok(b.length === 1 || b.length * Math.max(...b.map((i) => i.length)) <= 120);
});

test('concurrent calls share batches and each gets its own results in its own order', async () => {
  const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 5 });
  // Small calls, as agents send them: alone, each would leave its batches half empty.
  const calls = [0, 1, 2, 3, 4, 5, 6, 7].map((c) => pairs.slice(c * 3, c * 3 + 3));
  const results = await Promise.all(calls.map((c) => engine.scorePairs(c)));
  results.forEach((r, c) => assert.ok(maxAbsDiff(r.map((s) => s.score), tiny.st_predict_default.slice(c * 3, c * 3 + 3)) < 1e-4));
  const shared = engine.queue.counters.batches;
  const alone = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 0 });
  for (const c of calls) await alone.scorePairs(c);
  assert.ok(shared < alone.queue.counters.batches, `shared ${shared} batches vs ${alone.queue.counters.batches} one call at a time`);
});

test('under a backlog, calls are answered one after another, not all at the end', async () => {
  const queue = new BatchQueue((batch) => model.session.run(batch), { maxBatchTokens: 1024, batchWaitMs: 5 });
  const calls = [0, 1, 2, 3, 4, 5, 6, 7].map((c) => pairs.slice(c * 40, c * 40 + 40).map((p) => model.encode(p.query, p.document)));
  const finished: { call: number; pairsScored: number }[] = [];
  const results = await Promise.all(
    calls.map((c, call) => queue.submit(c).then((rows) => (finished.push({ call, pairsScored: queue.counters.pairs }), rows))),
  );
  results.forEach((rows, c) => assert.ok(maxAbsDiff(rows.map((r) => r[0]), tiny.torch_logits.slice(c * 40, c * 40 + 40)) < 1e-4));
  // Least work left first (every other turn): the first call is answered after about twice its own pairs, not after all
  // 320, and on average a call is answered before the end (all at the end: 320; this order: 240).
  assert.ok(finished[0].pairsScored <= 120, `first call answered after ${finished[0].pairsScored} of 320 pairs`);
  const mean = finished.reduce((n, f) => n + f.pairsScored, 0) / finished.length;
  assert.ok(mean <= 256, `calls answered after ${mean} of 320 pairs on average: ${finished.map((f) => f.pairsScored)}`);
});

/** A long document, chunked into many windows: parity passages end to end. */
const longDocument = (start: number, chars: number): string => {
  let text = '';
  for (let i = start; text.length < chars; i++) text += `${pairs[i % pairs.length].document} `;
  return text.slice(0, chars);
};

test('a small call is answered within about one batch while a large chunked call runs', async () => {
  const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 0, maxCallTokens: 0 });
  const docs = Array.from({ length: 12 }, (_, i) => longDocument(i * 7, 20_000));
  const reference = await new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 0, maxCallTokens: 0 }).rerank(pairs[0].query, docs, { longDocuments: 'chunk' });
  const small = pairs.slice(0, 3);
  let smallSent: number | undefined;
  let smallAnswered: number | undefined;
  let smallCall: Promise<unknown> | undefined;
  const large = engine.rerank(pairs[0].query, docs, {
    longDocuments: 'chunk',
    onProgress: () => {
      // A few batches in, another caller sends three pairs.
      if (smallSent === undefined && engine.queue.counters.batches >= 3) {
        smallSent = engine.queue.counters.batches;
        smallCall = engine.scorePairs(small).then((scores) => {
          smallAnswered = engine.queue.counters.batches;
          assert.ok(maxAbsDiff(scores.map((s) => s.score), tiny.st_predict_default.slice(0, 3)) < 1e-4);
        });
      }
    },
  });
  const ranked = await large;
  await smallCall;
  const total = engine.queue.counters.batches;
  assert.ok(smallSent !== undefined && smallAnswered !== undefined);
  // The batch under way when it arrived, then its own: not the large call's remaining batches.
  assert.ok(smallAnswered - smallSent <= 2, `small call answered ${smallAnswered - smallSent} batches after it was sent (large call: ${total} batches)`);
  assert.ok(total - smallAnswered > 20, `the large call still had ${total - smallAnswered} batches to go`);
  // The large call is batched on its own, as it would be alone: the same scores to the last bit.
  assert.deepEqual(ranked, reference);
});

test('a stream of small calls does not starve a large one', async () => {
  const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 0, maxCallTokens: 0 });
  const docs = Array.from({ length: 4 }, (_, i) => longDocument(i * 5, 10_000));
  let largeDone = false;
  const large = engine.rerank(pairs[1].query, docs, { longDocuments: 'chunk' }).then(() => (largeDone = true));
  let smallCalls = 0;
  const agent = async () => {
    for (let i = 0; !largeDone && i < 2000; i++) {
      await engine.scorePairs([pairs[(smallCalls++ * 13) % pairs.length]]);
    }
  };
  await Promise.all([large, agent(), agent()]);
  // Two agents calling back to back still leave the large call every other batch at least.
  assert.ok(largeDone, `the large call did not finish during ${smallCalls} small calls`);
});

test('a cancelled call has its remaining batches dropped', async () => {
  const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 0, maxCallTokens: 0 });
  const controller = new AbortController();
  const docs = Array.from({ length: 8 }, (_, i) => longDocument(i * 3, 20_000));
  const doomed = engine.rerank(pairs[2].query, docs, { longDocuments: 'chunk', signal: controller.signal, onProgress: () => controller.abort() });
  await assert.rejects(doomed, { name: 'AbortError' });
  const atCancel = engine.queue.counters.batches;
  const survivor = await engine.scorePairs(pairs.slice(0, 1));
  assert.ok(maxAbsDiff(survivor.map((s) => s.score), tiny.st_predict_default.slice(0, 1)) < 1e-4);
  assert.ok(atCancel <= 2, `${atCancel} batches ran for a call cancelled after its first`);
  assert.ok(engine.queue.counters.batches - atCancel <= 1, `${engine.queue.counters.batches - atCancel} batches ran after the cancellation, ${atCancel} before`);
});

test('maxCallTokens refuses a call over it before any inference, counting chunked windows', async () => {
  const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, maxCallTokens: 5_000 });
  const docs = Array.from({ length: 3 }, (_, i) => longDocument(i, 20_000));
  // Truncated, three documents are three windows of at most 512 tokens: they fit.
  await engine.rerank(pairs[0].query, docs, { longDocuments: 'truncate' });
  const batches = engine.queue.counters.batches;
  await assert.rejects(engine.rerank(pairs[0].query, docs, { longDocuments: 'chunk' }), (err: Error) => {
    assert.equal(err.name, 'CallTooLargeError');
    assert.match(err.message, /more than 5000 tokens/);
    return true;
  });
  assert.equal(engine.queue.counters.batches, batches, 'nothing of the refused call ran');
});

test('a cancelled call stops at a batch boundary; the others are untouched', async () => {
  const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, maxBatchTokens: 1024, batchWaitMs: 0, maxCallTokens: 0 });
  const controller = new AbortController();
  const doomed = engine.scorePairs(pairs, { signal: controller.signal, onProgress: () => controller.abort() });
  const survivor = engine.scorePairs(pairs.slice(0, 30));
  await assert.rejects(doomed, { name: 'AbortError' });
  const ok = await survivor;
  assert.ok(maxAbsDiff(ok.map((s) => s.score), tiny.st_predict_default.slice(0, 30)) < 1e-4);
  assert.ok(engine.queue.counters.pairs < pairs.length, `${engine.queue.counters.pairs} pairs scored`);
});

test("one call's failing batch does not fail another call sharing it", async () => {
  const queue = new BatchQueue((batch) => model.session.run(batch), { maxBatchTokens: 1 << 20, batchWaitMs: 5 });
  const good = pairs.slice(0, 5).map((p) => model.encode(p.query, p.document));
  // a token id past the vocabulary makes the embedding lookup fail inside ONNX Runtime
  const bad = [{ inputIds: [101, 10_000_000, 102], typeIds: [0, 0, 0] }];
  const [goodResult, badResult] = await Promise.allSettled([queue.submit(good), queue.submit(bad)]);
  assert.equal(badResult.status, 'rejected');
  assert.equal(goodResult.status, 'fulfilled');
  const logits = (goodResult as PromiseFulfilledResult<Float32Array[]>).value.map((r) => r[0]);
  assert.ok(maxAbsDiff(logits, tiny.torch_logits.slice(0, 5)) < 1e-4);
});

test('the cache answers a repeated call with identical scores and no inference', async () => {
  const cache = new ScoreCache(1000);
  const engine = new ScoringEngine(model, DEFAULT_ENGINE_OPTIONS, cache);
  const first = await engine.scorePairs(pairs.slice(0, 50));
  const pairsRun = engine.queue.counters.pairs;
  const second = await engine.scorePairs(pairs.slice(0, 50));
  assert.deepEqual(second, first);
  assert.equal(engine.queue.counters.pairs, pairsRun, 'no pair went to the model again');
  assert.equal(cache.hits, 50);
});

test('the cache evicts the least recently used entries beyond its capacity', async () => {
  const cache = new ScoreCache(2);
  const engine = new ScoringEngine(model, DEFAULT_ENGINE_OPTIONS, cache);
  const [a, b, c] = pairs;
  await engine.scorePairs([a, b]);
  await engine.scorePairs([a]); // a is now the most recent
  await engine.scorePairs([c]); // evicts b
  assert.equal(cache.size, 2);
  const before = engine.queue.counters.pairs;
  await engine.scorePairs([a, c]);
  assert.equal(engine.queue.counters.pairs, before, 'a and c were cached');
  await engine.scorePairs([b]);
  assert.equal(engine.queue.counters.pairs, before + 1, 'b had been evicted');
});

test('a document repeated inside one call is scored once', async () => {
  const engine = new ScoringEngine(model, DEFAULT_ENGINE_OPTIONS);
  const query = pairs[0].query;
  const docs = [pairs[0].document, pairs[1].document, pairs[0].document, pairs[0].document];
  const ranked = await engine.rerank(query, docs);
  assert.equal(engine.queue.counters.pairs, 2);
  const byIndex = new Map(ranked.map((r) => [r.index, r.score]));
  assert.equal(byIndex.get(0), byIndex.get(2));
  assert.equal(byIndex.get(0), byIndex.get(3));
});

test('the cache key follows the model: a changed activation or tokenizer after a reload is not served stale', async () => {
  const root = mkdtempSync(join(tmpdir(), 'rerank-identity-'));
  const dir = join(root, 'model');
  cpSync(TINY_CE, dir, { recursive: true });
  const host = new EngineHost(async () => ({ model: dir, variant: 'fp32' }), DEFAULT_ENGINE_OPTIONS, new ScoreCache(100));
  try {
    const pair = [pairs[0]];
    const before = (await (await host.ready()).scorePairs(pair))[0];
    assert.ok(Math.abs(before.score - tiny.st_predict_identity[0]) < 1e-4, 'tiny-ce scores with identity');

    // Same ONNX file, other activation in config.json.
    const configPath = join(dir, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config.sentence_transformers.activation_fn = 'torch.nn.modules.activation.Sigmoid';
    writeFileSync(configPath, JSON.stringify(config));
    const sigmoidEngine = await host.reload('test');
    const after = (await sigmoidEngine.scorePairs(pair))[0];
    assert.ok(Math.abs(after.score - tiny.st_predict_sigmoid[0]) < 1e-4, `score ${after.score} after the activation changed, expected ${tiny.st_predict_sigmoid[0]}`);
    assert.equal(sigmoidEngine.queue.counters.pairs, 1, 'the pair was scored again, not taken from the cache');

    // Same ONNX file and config, a tokenizer that no longer lowercases: other token ids.
    const tokenizerPath = join(dir, 'tokenizer.json');
    const tokenizer = JSON.parse(readFileSync(tokenizerPath, 'utf8'));
    tokenizer.normalizer.lowercase = false;
    writeFileSync(tokenizerPath, JSON.stringify(tokenizer));
    const cased = await host.reload('test');
    await cased.scorePairs(pair);
    assert.equal(cased.queue.counters.pairs, 1, 'the pair was scored again with the new tokenizer');
  } finally {
    host.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('int8: a large call scores the same to the last bit whether or not other calls arrive with it', async () => {
  // Dynamic int8 quantization scales each batch by its own range, so scores depend on the batch
  // composition: a call of four batch budgets or more is batched alone, whoever else is waiting.
  const int8 = await CrossEncoder.load({ model: unpackedMiniLm(), variant: 'int8' });
  try {
    // A batch wait long enough for both calls to be tokenized and waiting together.
    const options = { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 100, maxCallTokens: 0 };
    const query = pairs[0].query;
    const docs = Array.from({ length: 16 }, (_, i) => longDocument(i * 5, 2_000));
    const alone = await new ScoringEngine(int8, options).rerank(query, docs);
    const engine = new ScoringEngine(int8, options);
    // A one-pair call waiting with it would once have shared its batches:
    // sorted first, its short pair takes the first long pair into its batch, and every pairing
    // of two long pairs to a batch shifts by one.
    const small = pairs[1];
    const [, together] = await Promise.all([engine.scorePairs([small]), engine.rerank(query, docs)]);
    assert.deepEqual(together, alone);
  } finally {
    await int8.release();
  }
});
