/**
 * Measures the engine's throughput for several --max-batch-tokens budgets on the benchmark
 * workload (20-document rerank calls from the agro triplets, MiniLM-L6-shaped model), to
 * choose the default. Run on a quiet machine: `node --import tsx scripts/batch-budget.ts`.
 */
import { join, resolve } from 'node:path';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { ScoringEngine, DEFAULT_ENGINE_OPTIONS } from '../src/engine/scoring-engine.js';
import { callFor, ensureModel, readTriplets } from './bench/workload.js';
import { FIXTURES } from '../test/helpers/fixtures.js';

const ROOT = resolve(import.meta.dirname, '..');
const MODEL = join(ROOT, '.cache', 'models', 'minilm-l6-ternary');
const BUDGETS = [768, 1024, 1536, 2048, 4096];
const ROUNDS = 2;

ensureModel(join(FIXTURES, 'models', 'minilm-l6-ternary'), MODEL);
const triplets = readTriplets(join(FIXTURES, 'agro', 'triplets.jsonl'));
const calls = triplets.map((_, i) => callFor(triplets, i)).slice(0, Number(process.env.CALLS ?? 40));

for (const variant of ['fp32', 'int8'] as const) {
  const model = await CrossEncoder.load({ model: MODEL, variant });
  const engines = BUDGETS.map((maxBatchTokens) => new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, maxBatchTokens, batchWaitMs: 0 }));
  const elapsed = new Map<number, number>(BUDGETS.map((b) => [b, 0]));
  await engines[0].rerank(calls[0].query, calls[0].documents);
  // Budgets alternate call by call, so drift in machine speed hits all of them alike.
  for (let round = 0; round < ROUNDS; round++) {
    for (const call of calls) {
      for (const [i, engine] of engines.entries()) {
        const start = performance.now();
        await engine.rerank(call.query, call.documents);
        elapsed.set(BUDGETS[i], elapsed.get(BUDGETS[i])! + performance.now() - start);
      }
    }
  }
  const pairs = ROUNDS * calls.reduce((n, c) => n + c.documents.length, 0);
  for (const budget of BUDGETS) console.log(`${variant}\tmax-batch-tokens ${String(budget).padStart(5)}\t${(pairs / (elapsed.get(budget)! / 1000)).toFixed(1)} pairs/s`);
  await model.release();
}
