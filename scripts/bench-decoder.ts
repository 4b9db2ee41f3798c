/**
 * `npm run bench:decoder`: one rerank call (1 query x 20 code chunks of 150-255 tokens, Qwen3-Reranker
 * prompt) on a Qwen3-Reranker-0.6B-shaped model with random weights (scripts/make_bench_decoder.py),
 * in one run: rerank-mcp's engine with prefix reuse and with the plain graph, raw onnxruntime (Python)
 * on the same model.onnx, and sentence-transformers' CrossEncoder (PyTorch); then a call with
 * deadline_ms. Ratios are against "ours, plain graph" measured in the same run. See docs/decoder-speed.md.
 * --int8 adds the int8 variant (onnx/model_quantized.onnx, and model_past_quantized.onnx for prefix
 * reuse) to the alternation: not exact, so the table also says whether its top 5 is the plain graph's.
 *
 *   npm run bench:decoder -- [--model DIR] [--repeats 2] [--threads 2] [--skip raw-ort|st] [--int8]
 *
 * Without --model it generates .cache/models/qwen3-0.6b-shape on first use.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { DEFAULT_ENGINE_OPTIONS, ScoringEngine } from '../src/engine/scoring-engine.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, repeats: { type: 'string', default: '2' }, threads: { type: 'string', default: String(availableParallelism()) }, skip: { type: 'string', multiple: true, default: [] }, deadline: { type: 'string', default: '5000' }, int8: { type: 'boolean', default: false } } });
const python = process.env.RERANK_PYTHON ?? '.venv-finetune/bin/python';
// Without --model, the full 0.6B shape is generated once (about a minute and 4.5 GB on disk) and kept.
const model = values.model ?? '.cache/models/qwen3-0.6b-shape';
if (!existsSync(join(model, 'bench.json'))) {
  if (values.model) throw new Error(`${model}/bench.json is missing: make the model with ${python} scripts/make_bench_decoder.py --out ${model}`);
  console.error(`generating ${model} (scripts/make_bench_decoder.py: 28 layers, random weights)...`);
  const made = spawnSync(python, [join('scripts', 'make_bench_decoder.py'), '--out', model], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (made.status !== 0) throw new Error(`scripts/make_bench_decoder.py failed (exit ${made.status}): it needs ${python} with python/requirements-finetune.txt (set RERANK_PYTHON)`);
}
const repeats = Number(values.repeats);
const threads = Number(values.threads);
const { query, documents } = JSON.parse(readFileSync(join(model, 'bench.json'), 'utf8')) as { query: string; documents: string[] };
const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as Record<string, number>;

interface Row {
  system: string;
  seconds: number[];
  logits: number[];
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const rows: Row[] = [];

async function load(prefixReuse: 'auto' | 'off', variant: 'fp32' | 'int8' = 'fp32'): Promise<{ row: Row; engine: ScoringEngine }> {
  const m = await CrossEncoder.load({ model, variant, threads, prefixReuse });
  const engine = new ScoringEngine(m, { ...DEFAULT_ENGINE_OPTIONS, batchWaitMs: 0 });
  await engine.rerank('warm up', ['one short document']);
  const ours = variant === 'int8' ? 'ours int8' : 'ours';
  return { row: { system: `${ours}, ${prefixReuse === 'auto' ? `prefix reuse (${m.info().inference})` : 'plain graph'}`, seconds: [], logits: [] }, engine };
}

async function timeCall({ row, engine }: { row: Row; engine: ScoringEngine }): Promise<void> {
  const t = performance.now();
  const ranked = await engine.rerank(query, documents);
  row.seconds.push((performance.now() - t) / 1000);
  row.logits = [...ranked].sort((a, b) => a.index - b.index).map((r) => r.logit);
}

function pythonSystem(system: 'raw-ort' | 'st', label: string): Row {
  const r = spawnSync(python, [join('scripts', 'bench_decoder.py'), system, '--model', model, '--repeats', String(repeats), '--threads', String(threads)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${system}: ${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { seconds: number[]; logits: number[] };
  return { system: label, ...out };
}

// Both graphs loaded side by side and called in alternation, the order rotating each round, so
// that a neighbour's load on a shared machine hits both alike.
const plain = await load('off');
const reuse = await load('auto');
const int8 = values.int8 ? [await load('off', 'int8'), await load('auto', 'int8')] : [];
const ours = [plain, reuse, ...int8];
for (let i = 0; i < repeats; i++) for (const system of i % 2 === 0 ? ours : [...ours].reverse()) await timeCall(system);
rows.push(...ours.map((o) => o.row));
await plain.engine.model.release();
for (const o of int8) await o.engine.model.release();
if (!values.skip.includes('raw-ort')) rows.push(pythonSystem('raw-ort', 'raw onnxruntime (Python), same model.onnx, sorted <=1024-token batches'));
if (!values.skip.includes('st')) rows.push(pythonSystem('st', `sentence-transformers CrossEncoder, PyTorch, ${threads} threads`));

// A deadline on the same model, prefix reuse on, with the pace of the calls above known.
const deadlineMs = Number(values.deadline);
const t = performance.now();
const partial = await reuse.engine.rerank(query, documents, { deadlineMs });
const deadlineElapsed = performance.now() - t;
const scored = partial.filter((r) => r.scored !== false);
const full = new Map(reuse.row.logits.map((l, i) => [i, l]));
const deadlineDelta = Math.max(0, ...scored.map((r) => Math.abs(r.logit - full.get(r.index)!)));
await reuse.engine.model.release();

const base = median(rows[0].seconds);
const cpu = cpus()[0]?.model ?? 'unknown CPU';
const flags = (() => {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    return ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni'].map((f) => `${f}:${new RegExp(`\\b${f}\\b`).test(info) ? 'yes' : 'no'}`).join(' ');
  } catch {
    return '';
  }
})();
console.log(`\n${cpu}, ${availableParallelism()} cores (${flags}), ${threads} threads; model ${model}: ${config.num_hidden_layers} layers, hidden ${config.hidden_size}, heads ${config.num_attention_heads}/${config.num_key_value_heads}`);
console.log(`1 query x ${documents.length} documents, ${repeats} call(s) per system (ours: alternating; Python systems after them), median\n`);
const top5 = (logits: number[]) => logits.map((l, i) => [l, i]).sort((a, b) => b[0] - a[0]).slice(0, 5).map(([, i]) => i);
const want5 = top5(rows[0].logits);
const asPlain = (logits: number[]) => {
  const got = top5(logits);
  if (got.join() === want5.join()) return 'yes';
  return `${got.every((i) => want5.includes(i)) ? 'same 5, order' : 'no:'} ${got.join(',')}`;
};
console.log(`| system | one call, median | vs ours plain | max |Δlogit| vs ours plain | top 5 as ours plain (${want5.join(',')}) |`);
console.log('|---|---|---|---|---|');
for (const r of rows) {
  const d = Math.max(...r.logits.map((l, i) => Math.abs(l - rows[0].logits[i])));
  console.log(`| ${r.system} | ${median(r.seconds).toFixed(2)} s | ${(median(r.seconds) / base).toFixed(2)} | ${d.toExponential(1)} | ${asPlain(r.logits)} |`);
}
console.log(`\ndeadline_ms ${deadlineMs} (prefix reuse): answered after ${(deadlineElapsed / 1000).toFixed(2)} s with ${scored.length} of ${documents.length} scored (max |Δlogit| vs the full call ${deadlineDelta.toExponential(1)}), complete: ${scored.length === documents.length}`);
