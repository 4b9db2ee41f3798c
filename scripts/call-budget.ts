/**
 * The measurement behind --max-call-tokens' default: how many tokens typical large calls
 * send to the model (counted as the engine counts them: after truncation or chunking), and
 * how long the model takes per token at full 512-token windows, the worst case per token.
 *
 *   node --import tsx scripts/call-budget.ts [--windows 96]
 *
 * Times one call of --windows full windows per model and variant (after one warm-up call),
 * with the engine's default batching, and extrapolates linearly to each call's token count:
 * full windows cost the same per token whatever their number. Run on a quiet machine.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { DEFAULT_ENGINE_OPTIONS, ScoringEngine } from '../src/engine/scoring-engine.js';
import { ensureModel, readTriplets } from './bench/workload.js';
import { FIXTURES } from '../test/helpers/fixtures.js';

const ROOT = resolve(import.meta.dirname, '..');
const MINILM = join(ROOT, '.cache', 'models', 'minilm-l6-ternary');
ensureModel(join(FIXTURES, 'models', 'minilm-l6-ternary'), MINILM);
const { values: opts } = parseArgs({ options: { windows: { type: 'string', default: '96' } }, strict: true });
const WINDOWS = Number(opts.windows);

const triplets = readTriplets(join(FIXTURES, 'agro', 'triplets.jsonl'));
const corpus = triplets.flatMap((t) => [t.positive_text, ...t.negative_texts]).join(' ');
const text = (chars: number, offset: number): string => (corpus.repeat(Math.ceil((chars + offset) / corpus.length) + 1)).slice(offset, offset + chars);
const query = triplets[0].query;

const CALLS = [
  { name: '1000 docs x 512 tokens, truncate', docs: 1000, chars: 4000, mode: 'truncate' as const },
  { name: '100 docs x 30 000 chars, chunk', docs: 100, chars: 30_000, mode: 'chunk' as const },
  { name: '300 docs x 30 000 chars, chunk', docs: 300, chars: 30_000, mode: 'chunk' as const },
  { name: '1000 docs x 100 000 chars, chunk', docs: 1000, chars: 100_000, mode: 'chunk' as const },
];

const models = [
  { name: 'minilm-l6 fp32', model: await CrossEncoder.load({ model: MINILM, variant: 'fp32' }) },
  { name: 'minilm-l6 int8', model: await CrossEncoder.load({ model: MINILM, variant: 'int8' }) },
  { name: 'tiny-ce fp32', model: await CrossEncoder.load({ model: join(FIXTURES, 'models', 'tiny-ce'), variant: 'fp32' }) },
];

// Tokens per call, counted as the engine counts them: every window of every document.
const tokenizer = models[0].model;
const tokensOf = (docs: number, chars: number, mode: 'truncate' | 'chunk'): number => {
  let total = 0;
  for (let d = 0; d < docs; d++) {
    const doc = text(chars, (d * 7919) % corpus.length);
    const windows = mode === 'chunk' ? tokenizer.tokenizer.encodeWindows(query, doc, tokenizer.maxLength, DEFAULT_ENGINE_OPTIONS.chunkOverlap) : [tokenizer.encode(query, doc)];
    for (const w of windows) total += w.inputIds.length;
  }
  return total;
};

const perToken = new Map<string, number>();
for (const { name, model } of models) {
  const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 0, maxCallTokens: 0 });
  const docs = Array.from({ length: WINDOWS }, (_, i) => text(4000, i * 3001));
  await engine.rerank(query, docs.slice(0, 8));
  const tokensBefore = engine.queue.counters.tokens;
  const start = performance.now();
  await engine.rerank(`${query} `, docs);
  const seconds = (performance.now() - start) / 1000;
  const tokens = engine.queue.counters.tokens - tokensBefore;
  perToken.set(name, seconds / tokens);
  console.log(`${name}: ${WINDOWS} windows, ${tokens} tokens in ${seconds.toFixed(2)} s: ${Math.round(tokens / seconds)} tokens/s`);
}

console.log(`\n| call | tokens sent to the model | ${models.map((m) => `${m.name} s`).join(' | ')} |`);
console.log(`|---|---:|${models.map(() => '---:').join('|')}|`);
for (const call of CALLS) {
  // 1000 x 100 000 characters is extrapolated from 100 documents: tokenizing it all takes minutes.
  const sample = Math.min(call.docs, 100);
  const tokens = Math.round((tokensOf(sample, call.chars, call.mode) * call.docs) / sample);
  console.log(`| ${call.name} | ${tokens} | ${models.map((m) => (tokens * perToken.get(m.name)!).toFixed(0)).join(' | ')} |`);
}
for (const { model } of models) await model.release();
