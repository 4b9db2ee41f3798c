/**
 * Where a rerank call's time goes inside ONNX Runtime: runs workload calls the way the
 * engine batches them (per call, length-sorted, under the default token budget) with ORT's
 * profiler on, then prints kernel time per operator type and how many FLOP/s the matrix
 * products reached, per core and cycle, against what the cores' FMA units can do: the
 * evidence for how close the server is to what the CPU can do (docs/benchmarks.md).
 *
 *   node --import tsx scripts/profile-ops.ts [--calls 20] [--variant fp32|int8] [--threads N] [--model DIR]
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { resolveModelFiles, readJsonFile } from '../src/model/model-dir.js';
import { PairTokenizer } from '../src/tokenizer/pair-tokenizer.js';
import { resolveMaxLength } from '../src/model/cross-encoder.js';
import { batchFeeds } from '../src/model/onnx-session.js';
import { planBatches } from '../src/engine/batch-plan.js';
import { DEFAULT_ENGINE_OPTIONS } from '../src/engine/scoring-engine.js';
import { callFor, ensureModel, readTriplets } from './bench/workload.js';
import { FIXTURES } from '../test/helpers/fixtures.js';

/** Two 256-bit FMA pipes per core (AVX2 / AVX-512 on Zen 4 alike): 2 × 8 lanes × 2 FLOP. */
const FP32_FLOP_PER_CYCLE_PER_CORE = 32;

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    calls: { type: 'string', default: '20' },
    variant: { type: 'string', default: 'fp32' },
    threads: { type: 'string', default: String(availableParallelism()) },
    model: { type: 'string' },
  },
  strict: true,
});
const MODEL = opts.model ? resolve(opts.model) : join(ROOT, '.cache', 'models', 'minilm-l6-ternary');
if (!opts.model) ensureModel(join(FIXTURES, 'models', 'minilm-l6-ternary'), MODEL);
const variant = opts.variant === 'int8' ? 'int8' : 'fp32';
const threads = Number(opts.threads);

const files = resolveModelFiles(MODEL, variant);
const config = readJsonFile(files.configPath) as { hidden_size: number; intermediate_size: number; num_hidden_layers: number };
const maxLength = resolveMaxLength(config, files.tokenizerConfigPath ? readJsonFile(files.tokenizerConfigPath) : {});
const tokenizer = PairTokenizer.fromFiles(files.tokenizerPath, files.tokenizerConfigPath);
const triplets = readTriplets(join(FIXTURES, 'agro', 'triplets.jsonl'));
const calls = Array.from({ length: Math.min(Number(opts.calls), triplets.length) }, (_, i) => callFor(triplets, i));

const profileDir = mkdtempSync(join(tmpdir(), 'rerank-profile-'));
const session = await ort.InferenceSession.create(files.onnxPath, {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  enableMemPattern: false,
  enableProfiling: true,
  profileFilePrefix: join(profileDir, 'ort'),
});

const { hidden_size: h, intermediate_size: inner, num_hidden_layers: layers } = config;
let matmulFlop = 0;
const start = performance.now();
for (const call of calls) {
  const pairs = call.documents.map((doc) => tokenizer.encodePair(call.query, doc, maxLength)).map((p) => ({ ...p, length: p.inputIds.length }));
  for (const batch of planBatches(pairs, DEFAULT_ENGINE_OPTIONS.maxBatchTokens)) {
    await session.run(batchFeeds(batch, session.inputNames.includes('token_type_ids')));
    const width = batch[batch.length - 1].length;
    const tokens = batch.length * width; // padded: the kernels compute every position
    // Q, K, V, output projection and the two feed-forward layers, then scores and context.
    matmulFlop += layers * (2 * tokens * (4 * h * h + 2 * h * inner) + 2 * 2 * batch.length * width * width * h);
  }
}
const wallMs = performance.now() - start;
session.endProfiling();
await session.release();

const profileFile = readdirSync(profileDir).find((f) => f.endsWith('.json'));
if (!profileFile) throw new Error(`ONNX Runtime wrote no profile into ${profileDir}`);
const events = JSON.parse(readFileSync(join(profileDir, profileFile), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
rmSync(profileDir, { recursive: true, force: true });

const byOp = new Map<string, number>();
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.op_name) continue;
  byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur / 1000);
}
const kernelMs = [...byOp.values()].reduce((a, b) => a + b, 0);
const pairCount = calls.reduce((n, c) => n + c.documents.length, 0);
console.log(`${variant} · ${threads} threads · ${calls.length} calls × 20 documents · ${(pairCount / (wallMs / 1000)).toFixed(1)} pairs/s with the profiler on`);
console.log(`kernel time ${kernelMs.toFixed(0)} ms of ${wallMs.toFixed(0)} ms wall`);
for (const [op, ms] of [...byOp].sort((a, b) => b[1] - a[1]).filter(([, ms]) => ms / kernelMs >= 0.001)) {
  console.log(`  ${op.padEnd(28)} ${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / kernelMs).toFixed(1).padStart(5)} %`);
}
const products = ['MatMul', 'FusedMatMul', 'MatMulInteger', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat'].reduce((ms, op) => ms + (byOp.get(op) ?? 0), 0);
// Node reports 0 MHz on this VM; /proc/cpuinfo has the nominal clock.
const cpuinfoMhz = /cpu MHz\s*:\s*([\d.]+)/.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1];
const mhz = cpus()[0]?.speed || Math.round(Number(cpuinfoMhz ?? 0));
const achieved = matmulFlop / (products / 1000);
console.log(`matrix products: ${(matmulFlop / 1e9).toFixed(0)} GFLOP (padded tokens) in ${products.toFixed(0)} ms = ${(achieved / 1e9).toFixed(0)} GFLOP/s`);
if (variant === 'fp32' && mhz > 0) {
  // A VM reports the nominal clock; cores boost above it, so this is an upper bound on efficiency.
  const perCycle = achieved / (threads * mhz * 1e6);
  console.log(`= ${perCycle.toFixed(1)} FLOP per cycle per core at the nominal ${mhz} MHz; an FMA-bound core does at most ${FP32_FLOP_PER_CYCLE_PER_CORE} per cycle of its real clock`);
}
