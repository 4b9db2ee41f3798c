/**
 * The measurement behind `rerank-mcp finetune`'s default --epochs and --negatives: the fixture
 * triplets become logged rerank calls (each query with its positive and negatives, scored by the
 * base model, so ranks are real) labeled relevant-only, as an agent would label them; then
 * `finetune` runs for each setting and seed, and the held-out MRR@10 before and after is printed.
 *
 *   npm run build && node --import tsx scripts/finetune-defaults.ts [--python PY] [--epochs 1,3,10] [--negatives 1,2,4] [--seeds 42,1,2] [--triplets N]
 *
 * The base is the tiny random BERT of scripts/make_tiny_base.py (a pretrained checkpoint cannot
 * be downloaded here), so the numbers say how much a small feedback set moves a model, not what
 * a real model reaches.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FeedbackStore } from '../src/feedback/feedback-store.js';
import { FIXTURES } from '../test/helpers/fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');

const { values } = parseArgs({
  options: {
    python: { type: 'string', default: process.env.RERANK_PYTHON ?? 'python3' },
    epochs: { type: 'string', default: '1,3,10' },
    negatives: { type: 'string', default: '1,2,4' },
    seeds: { type: 'string', default: '42,1,2' },
    triplets: { type: 'string', default: '107' },
  },
});
const list = (s: string) => s.split(',').map(Number);

interface Triplet {
  query: string;
  positive_text: string;
  negative_texts: string[];
}

const work = mkdtempSync(join(tmpdir(), 'finetune-defaults-'));
try {
  const py = values.python!;
  execFileSync(py, [join(ROOT, 'scripts', 'make_tiny_base.py'), '--tokenizer', join(FIXTURES, 'agro'), '--out', join(work, 'base')], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync(process.execPath, [CLI, 'finetune', '--epochs', '0', '--base', join(work, 'base'), '--out', join(work, 'served'), '--python', py], { stdio: ['ignore', 'ignore', 'ignore'] });

  const triplets = readFileSync(join(FIXTURES, 'agro', 'triplets.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, Number(values.triplets)).map((l) => JSON.parse(l) as Triplet);
  // The positive sits at a varying position, as retrieval would put it.
  const calls = triplets.map((t, i) => {
    const docs = [...t.negative_texts];
    const at = i % (docs.length + 1);
    docs.splice(at, 0, t.positive_text);
    return { query: t.query, docs, positive: at };
  });
  const input = calls.flatMap((c) => c.docs.map((d) => JSON.stringify({ query: c.query, document: d }))).join('\n') + '\n';
  const scored = execFileSync(process.execPath, [CLI, 'score', '--model', join(work, 'served')], { input, maxBuffer: 1 << 26, stdio: ['pipe', 'pipe', 'ignore'] })
    .toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { score: number; logit: number });

  const db = join(work, 'feedback.db');
  const store = FeedbackStore.open(db);
  let k = 0;
  for (const c of calls) {
    const rerankId = store.logRerank({ query: c.query, modelId: 'tiny', candidates: c.docs.map((text, index) => ({ index, text, ...scored[k++] })) });
    store.labelRerank(rerankId, [c.positive], []);
  }
  store.close();

  console.log(`${calls.length} labeled rerank calls (relevant only), tiny random base; MRR@10 on the held-out calls`);
  console.log('negatives epochs seed  train  eval  before   after   delta   seconds');
  const summary: string[] = [];
  for (const negatives of list(values.negatives!)) {
    for (const epochs of list(values.epochs!)) {
      const deltas: number[] = [];
      for (const seed of list(values.seeds!)) {
        const started = performance.now();
        const run = spawnSync(process.execPath, [CLI, 'finetune', '--db', db, '--base', join(work, 'base'), '--out', join(work, 'out'), '--epochs', String(epochs), '--negatives', String(negatives), '--seed', String(seed), '--python', py], { encoding: 'utf8', maxBuffer: 1 << 26 });
        const seconds = (performance.now() - started) / 1000;
        const last = run.stdout.trim().split('\n').pop() ?? '';
        if (run.status !== 0) throw new Error(`finetune exited ${run.status}: ${run.stderr.slice(-2000)}`);
        const r = JSON.parse(last) as { train_pairs: number; eval_queries: number; before: Record<string, number>; after: Record<string, number> };
        const delta = r.after['mrr@10'] - r.before['mrr@10'];
        deltas.push(delta);
        console.log(`${String(negatives).padStart(9)} ${String(epochs).padStart(6)} ${String(seed).padStart(4)} ${String(r.train_pairs).padStart(6)} ${String(r.eval_queries).padStart(5)}  ${r.before['mrr@10'].toFixed(3)}   ${r.after['mrr@10'].toFixed(3)}  ${delta >= 0 ? '+' : ''}${delta.toFixed(3)}  ${seconds.toFixed(0).padStart(6)}`);
      }
      const mean = deltas.reduce((a, b) => a + b, 0) / deltas.length;
      summary.push(`negatives ${negatives}, epochs ${epochs}: mean MRR@10 gain ${mean >= 0 ? '+' : ''}${mean.toFixed(3)} over ${deltas.length} seeds, worst ${Math.min(...deltas).toFixed(3)}`);
    }
  }
  console.log('\n' + summary.join('\n'));
} finally {
  rmSync(work, { recursive: true, force: true });
}
