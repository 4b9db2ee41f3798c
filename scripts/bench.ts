/**
 * `npm run bench`: throughput, latency and peak memory of rerank-mcp against the raw
 * onnxruntime-node ceiling and the transformers.js peer, on the same model file, the same
 * threads and the same workload. See docs/benchmarks.md.
 *
 *   npm run bench -- [--quick] [--variant fp32|int8|both] [--out FILE]
 *
 * Every system runs in its own worker process (scripts/bench/worker.ts); the driver runs
 * one worker at a time, round-robin over many short rounds with a rotating order, so that
 * drift (thermal, neighbours, the hypervisor's placement of the vCPUs) hits all systems alike.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLEAN_CORES, type BatchPlan, type Call, type CallResult, type DriverMessage, type SystemName, type TuneResult, type Variant, type WorkerMessage } from './bench/protocol.js';
import { machineBusyMs } from './bench/procfs.js';
import { fmt, markdownTable, median, percentile, round } from './bench/stats.js';
import { DOCS_PER_CALL, callFor, chunk, ensureModel, pickQueries, readTriplets, renamed } from './bench/workload.js';
import { MINILM, TRIPLETS } from '../test/helpers/fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE_MODEL = MINILM;
const DEFAULT_MODEL = join(ROOT, '.cache/models/minilm-l6-ternary');
const WORKER = join(ROOT, 'scripts/bench/worker.ts');

const SYSTEMS: readonly SystemName[] = ['raw-ort', 'transformers.js', 'engine', 'stdio', 'stdio-concurrent'];
const CONCURRENCY = 8;
/** Before each measurement the driver waits for the machine to be this quiet (cores busy)... */
const QUIET_CORES = 0.15;
const QUIET_SAMPLE_MS = 300;

const PEER_BATCH_SIZE = 16;

/**
 * Candidate batchings for the raw ceiling, tried with memory patterns off (what the server
 * sets); the fastest is then tried with them on (ONNX Runtime's default) too, and the
 * fastest of all is kept.
 */
const RAW_BATCHINGS: BatchPlan[] = [
  { label: 'sorted, <=2 pairs per batch', maxPairs: 2, maxTokens: Infinity, memPattern: false },
  { label: 'sorted, <=4 pairs per batch', maxPairs: 4, maxTokens: Infinity, memPattern: false },
  { label: 'sorted, <=8 pairs per batch', maxPairs: 8, maxTokens: Infinity, memPattern: false },
  { label: 'sorted, <=512 tokens per batch', maxPairs: Infinity, maxTokens: 512, memPattern: false },
  { label: 'sorted, <=1024 tokens per batch', maxPairs: Infinity, maxTokens: 1024, memPattern: false },
  { label: 'sorted, <=2048 tokens per batch', maxPairs: Infinity, maxTokens: 2048, memPattern: false },
];
const planLabel = (p: BatchPlan) => `${p.label}, mem pattern ${p.memPattern ? 'on' : 'off'}`;

interface Settings {
  queries: number;
  /** Calls each system runs per round; short rounds interleave the systems finely. */
  callsPerRound: number;
  /** The concurrent scenario runs one wave every this many rounds. */
  concurrencyEvery: number;
  warmupCalls: number;
  tuneCalls: number;
  tunePasses: number;
  cacheProbes: number;
  cacheRepeats: number;
  /** The longest wait for a quiet machine before each measurement... */
  quietMaxWaitMs: number;
  /** ...and for all of them together. */
  quietBudgetMs: number;
}

const FULL: Settings = { queries: Infinity, callsPerRound: 3, concurrencyEvery: 6, warmupCalls: 1, tuneCalls: 3, tunePasses: 2, cacheProbes: 3, cacheRepeats: 3, quietMaxWaitMs: 30_000, quietBudgetMs: 150_000 };
const QUICK: Settings = { queries: 16, callsPerRound: 2, concurrencyEvery: 4, warmupCalls: 1, tuneCalls: 1, tunePasses: 1, cacheProbes: 1, cacheRepeats: 3, quietMaxWaitMs: 5_000, quietBudgetMs: 20_000 };

const HELP = `Usage: npm run bench -- [options]

  --quick                 16 queries, 2 calls per round (about 2 minutes on 2 cores)
  --variant <v>           fp32, int8 or both (default both)
  --out <file>            JSON results (default bench-results/bench-<date>.json)
  --model <dir>           model directory (default .cache/models/minilm-l6-ternary, unpacked from
                          test/fixtures/models/minilm-l6-ternary when missing)
  --threads <n>           ONNX Runtime intra-op threads for every system (default: cores = ${availableParallelism()})
  --queries <n>           number of queries (default: all, or 16 with --quick)
  --calls-per-round <n>   calls each system runs per round (default 3, or 2 with --quick)
  --no-wait               measure at once instead of waiting for other processes to go quiet (before each
                          measurement up to ${FULL.quietMaxWaitMs / 1000} s, ${FULL.quietBudgetMs / 1000} s in all; ${QUICK.quietMaxWaitMs / 1000} s / ${QUICK.quietBudgetMs / 1000} s with --quick)
`;

// ---------------------------------------------------------------------------------------

interface Unit {
  system: SystemName;
  variant: Variant;
  worker: WorkerHandle;
  ready?: Extract<WorkerMessage, { type: 'ready' }>;
  calls: CallResult[];
  wallMs: number;
  /** CPU time other processes on the machine used while this system was measured. */
  foreignCpuMs: number;
  tuning?: Tuning;
  cache?: { first: number[]; repeated: number[] };
  stats?: Extract<WorkerMessage, { type: 'stats' }>;
}

interface Tuning {
  results: (TuneResult & { kept: boolean })[];
  best: BatchPlan;
  passes: number;
}

const unitName = (u: { system: string; variant: string }) => `${u.system} ${u.variant}`;

class WorkerHandle {
  private readonly child: ChildProcess;
  private pending: { expect: string; resolve: (m: WorkerMessage) => void; reject: (e: Error) => void } | undefined;
  private exited = false;

  constructor(private readonly name: string) {
    // ONNX Runtime telemetry off everywhere, as the server and transformers.js set it for themselves.
    const env = { ...process.env, ORT_DISABLE_TELEMETRY: '1' };
    this.child = fork(WORKER, [], { cwd: ROOT, env, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.child.on('message', (message: WorkerMessage) => {
      const pending = this.pending;
      this.pending = undefined;
      if (!pending) return;
      if (message.type === 'error') pending.reject(new Error(`${this.name}: ${message.message}`));
      else if (message.type !== pending.expect) pending.reject(new Error(`${this.name}: expected ${pending.expect}, got ${message.type}`));
      else pending.resolve(message);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      this.pending?.reject(new Error(`${this.name}: worker exited (${signal ?? code})`));
      this.pending = undefined;
    });
  }

  request<T extends WorkerMessage['type']>(message: DriverMessage, expect: T): Promise<Extract<WorkerMessage, { type: T }>> {
    if (this.exited) return Promise.reject(new Error(`${this.name}: worker is gone`));
    return new Promise((resolve, reject) => {
      this.pending = { expect, resolve: resolve as (m: WorkerMessage) => void, reject };
      this.child.send(message);
    });
  }

  kill(): void {
    if (!this.exited) this.child.kill();
  }
}

// ---------------------------------------------------------------------------------------

function machine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const git = (args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() || undefined;
  const version = (pkg: string) => {
    try {
      return JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version as string;
    } catch {
      return undefined;
    }
  };
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memory_gb: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    kernel: release(),
    onnxruntime_node: version('onnxruntime-node'),
    transformers_js: version('@huggingface/transformers'),
    mcp_sdk: version('@modelcontextprotocol/sdk'),
    git_commit: git(['rev-parse', '--short', 'HEAD']),
    git_dirty_files: git(['status', '--porcelain', '--untracked-files=no'])?.split('\n').filter(Boolean).length ?? 0,
  };
}

async function tokenStats(modelDir: string, calls: Call[]) {
  type Tok = typeof import('../src/tokenizer/pair-tokenizer.js');
  const { PairTokenizer } = (await import(new URL('../dist/tokenizer/pair-tokenizer.js', import.meta.url).href)) as Tok;
  const tokenizerConfigPath = existsSync(join(modelDir, 'tokenizer_config.json')) ? join(modelDir, 'tokenizer_config.json') : null;
  const tokenizer = PairTokenizer.fromFiles(join(modelDir, 'tokenizer.json'), tokenizerConfigPath);
  // The model's max length, as CrossEncoder.load reads it.
  const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8'));
  const declared = tokenizerConfigPath ? JSON.parse(readFileSync(tokenizerConfigPath, 'utf8')).model_max_length : undefined;
  const limit = Math.min(typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : Infinity, typeof declared === 'number' ? declared : Infinity);
  const maxLength = Number.isFinite(limit) ? limit : 512;
  const lengths = calls.flatMap((c) => c.documents.map((d) => tokenizer.encodePair(c.query, d, maxLength).inputIds.length));
  return {
    tokens_per_pair_mean: round(lengths.reduce((a, b) => a + b, 0) / lengths.length, 1),
    tokens_per_pair_min: Math.min(...lengths),
    tokens_per_pair_max: Math.max(...lengths),
  };
}

const pairsOf = (results: readonly CallResult[]) => results.reduce((n, r) => n + r.logits.length, 0);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      variant: { type: 'string', default: 'both' },
      out: { type: 'string' },
      model: { type: 'string' },
      threads: { type: 'string' },
      queries: { type: 'string' },
      'calls-per-round': { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const settings = { ...(values.quick ? QUICK : FULL) };
  if (values.queries) settings.queries = Number(values.queries);
  if (values['calls-per-round']) settings.callsPerRound = Number(values['calls-per-round']);
  const threads = values.threads ? Number(values.threads) : availableParallelism();
  if (!['fp32', 'int8', 'both'].includes(values.variant!)) throw new Error(`--variant must be fp32, int8 or both, got ${values.variant}`);
  const variants: Variant[] = values.variant === 'both' ? ['fp32', 'int8'] : [values.variant as Variant];
  if (!existsSync(join(ROOT, 'dist/cli.js'))) throw new Error('dist/cli.js is missing: run `npm run build` first (`npm run bench` does)');

  const modelDir = values.model ? resolve(values.model) : DEFAULT_MODEL;
  if (!values.model && ensureModel(FIXTURE_MODEL, modelDir)) log(`copied ${relative(ROOT, FIXTURE_MODEL)} into ${relative(ROOT, modelDir)}`);

  // The workload: one call per query, 20 candidates each; warm-up, tuning and cache probes
  // reuse the documents under other query texts, so they never prime a server-side cache.
  const triplets = readTriplets(TRIPLETS);
  const workload = pickQueries(triplets.length, settings.queries).map((i, k) => ({ ...callFor(triplets, i), id: k }));
  const rounds = chunk(workload, Math.ceil(workload.length / settings.callsPerRound));
  const warmups = (tag: string, n: number, base: number) => Array.from({ length: n }, (_, k) => renamed(workload[k % workload.length], `${tag} ${k}`, -(base + k)));
  // Tuning calls spread over the workload, so that short and long documents both count.
  const tuneCalls = Array.from({ length: settings.tuneCalls }, (_, k) => renamed(workload[Math.floor((k * workload.length) / settings.tuneCalls)], `tuning ${k}`, -(1000 + k)));
  const probes = warmups('cache probe', settings.cacheProbes, 2000);
  const startedAt = performance.now();
  const quiet = { waits: 0, waitedMs: 0, gaveUp: 0 };
  const waitForQuiet = async () => {
    if (values['no-wait']) return;
    const start = performance.now();
    for (;;) {
      const before = machineBusyMs();
      await sleep(QUIET_SAMPLE_MS);
      if ((machineBusyMs() - before) / QUIET_SAMPLE_MS < QUIET_CORES) break;
      const waited = performance.now() - start;
      if (waited > settings.quietMaxWaitMs || quiet.waitedMs + waited > settings.quietBudgetMs) {
        quiet.gaveUp++;
        break;
      }
    }
    quiet.waits++;
    quiet.waitedMs += performance.now() - start;
  };
  const meta = machine();
  const tokens = await tokenStats(modelDir, workload);
  log(
    `workload: ${workload.length} calls x ${DOCS_PER_CALL} documents (${workload.length * DOCS_PER_CALL} pairs, ${tokens.tokens_per_pair_mean} tokens per pair), ` +
      `${rounds.length} rounds of ${settings.callsPerRound}, variants ${variants.join('+')}, ${threads} threads`,
  );

  // The raw ceiling's batching is chosen first, in a throwaway worker, so that the measured
  // worker's peak RSS reflects only the batching it is measured with.
  const plans = new Map<Variant, Tuning>();
  for (const variant of variants) {
    const tuner = new WorkerHandle(`raw-ort ${variant} tuning`);
    try {
      const init = { type: 'init', system: 'raw-ort', variant, modelDir, threads, concurrency: CONCURRENCY, peerBatchSize: PEER_BATCH_SIZE } as const;
      await tuner.request(init, 'ready');
      await tuner.request({ type: 'warmup', calls: warmups('warm-up', settings.warmupCalls, 100) }, 'done');
      await waitForQuiet();
      const t = performance.now();
      const tune = (plans: BatchPlan[]) => tuner.request({ type: 'tune', calls: tuneCalls, plans, passes: settings.tunePasses }, 'tuned');
      const batching = await tune(RAW_BATCHINGS);
      const memory = await tune([true, false].map((memPattern) => ({ ...batching.best, memPattern })));
      // The second stage's two lines were timed side by side; its winner is kept.
      const best = memory.best;
      const results = [
        ...batching.results.map((r) => ({ ...r, kept: false })),
        ...memory.results.map((r) => ({ ...r, kept: r.plan.memPattern === best.memPattern, plan: { ...r.plan, label: `${r.plan.label} (stage 2)` } })),
      ];
      plans.set(variant, { results, best, passes: settings.tunePasses });
      log(`tuned raw-ort ${variant} in ${((performance.now() - t) / 1000).toFixed(1)} s: ${planLabel(best)}`);
      await tuner.request({ type: 'finish' }, 'stats');
    } finally {
      tuner.kill();
    }
  }

  // Start every worker, one at a time, so that load times are not contended.
  const units: Unit[] = variants.flatMap((variant) => SYSTEMS.map((system) => ({ system, variant, worker: new WorkerHandle(`${system} ${variant}`), calls: [], wallMs: 0, foreignCpuMs: 0 })));
  const cleanup = () => units.forEach((u) => u.worker.kill());
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    for (const unit of units) {
      const plan = unit.system === 'raw-ort' ? plans.get(unit.variant) : undefined;
      unit.tuning = plan;
      unit.ready = await unit.worker.request(
        { type: 'init', system: unit.system, variant: unit.variant, modelDir, threads, concurrency: CONCURRENCY, peerBatchSize: PEER_BATCH_SIZE, plan: plan?.best },
        'ready',
      );
      log(`loaded ${unitName(unit)} in ${Math.round(unit.ready.loadMs)} ms`);
      await unit.worker.request({ type: 'warmup', calls: warmups('warm-up', settings.warmupCalls, 100) }, 'done');
    }

    // The concurrent scenario gathers the calls of several rounds into one wave of CONCURRENCY.
    let gathered: Call[] = [];
    let lastOther = Infinity;
    for (let r = 0; r < rounds.length; r++) {
      const roundStart = performance.now();
      let roundOther = 0;
      gathered.push(...rounds[r]);
      const waveDue = (r + 1) % settings.concurrencyEvery === 0 || r === rounds.length - 1;
      const order = [...units.slice(r % units.length), ...units.slice(0, r % units.length)];
      for (const unit of order) {
        if (unit.system === 'stdio-concurrent' && !waveDue) continue;
        // Wait for a quiet machine only when the last measurement saw other processes.
        if (lastOther >= QUIET_CORES) await waitForQuiet();
        // After another process had the cores, one short unmeasured call wakes this one up.
        const wake = warmups(`round ${r} warm-up`, 1, 200 + r).map((c) => ({ ...c, documents: c.documents.slice(0, 4) }));
        await unit.worker.request({ type: 'warmup', calls: wake }, 'done');
        const calls = unit.system === 'stdio-concurrent' ? gathered.slice(0, CONCURRENCY) : rounds[r];
        const result = await unit.worker.request({ type: 'run', calls }, 'result');
        unit.calls.push(...result.calls);
        unit.wallMs += result.wallMs;
        unit.foreignCpuMs += result.otherCores * result.wallMs;
        lastOther = result.otherCores;
        roundOther = Math.max(roundOther, result.otherCores);
      }
      if (waveDue) gathered = [];
      const done = units.reduce((n, u) => n + u.calls.length, 0);
      log(
        `round ${String(r + 1).padStart(2)}/${rounds.length}: ${rounds[r].length} calls per system, ${((performance.now() - roundStart) / 1000).toFixed(1)} s, ` +
          `other processes up to ${roundOther.toFixed(2)} cores (${done} calls measured)`,
      );
    }

    for (const unit of units.filter((u) => u.system === 'stdio')) {
      await waitForQuiet();
      unit.cache = await unit.worker.request({ type: 'cache', calls: probes, repeats: settings.cacheRepeats }, 'cached');
    }
    for (const unit of units) unit.stats = await unit.worker.request({ type: 'finish' }, 'stats');
  } finally {
    cleanup();
  }

  const report = buildReport(units, variants, { meta, settings, threads, modelDir, workload, tokens, quiet, rounds: rounds.length, elapsedS: (performance.now() - startedAt) / 1000 });
  const outFile = resolve(values.out ?? join(ROOT, 'bench-results', `bench-${meta.date.slice(0, 19).replace(/:/g, '-')}${values.quick ? '-quick' : ''}.json`));
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(report.json, null, 2) + '\n');
  process.stdout.write(report.text + `\nJSON written to ${relative(process.cwd(), outFile)}\n`);
}

// ---------------------------------------------------------------------------------------

interface ReportContext {
  meta: ReturnType<typeof machine>;
  settings: Settings;
  threads: number;
  modelDir: string;
  workload: Call[];
  tokens: Awaited<ReturnType<typeof tokenStats>>;
  quiet: { waits: number; waitedMs: number; gaveUp: number };
  rounds: number;
  elapsedS: number;
}

interface Throughput {
  calls: number;
  pairs: number;
  pairs_per_s: number;
}

/** Pairs per second over `calls`, each charged its share of the wall time. */
function throughput(calls: readonly CallResult[]): Throughput {
  const pairs = pairsOf(calls);
  const ms = calls.reduce((n, c) => n + c.shareMs, 0);
  return { calls: calls.length, pairs, pairs_per_s: calls.length > 0 ? pairs / (ms / 1000) : NaN };
}

function buildReport(units: Unit[], variants: Variant[], ctx: ReportContext) {
  const find = (system: SystemName, variant: Variant) => units.find((u) => u.system === system && u.variant === variant)!;
  const isClean = (c: CallResult) => c.otherCores < CLEAN_CORES;

  const rows = units.map((unit) => {
    const ms = unit.calls.map((c) => c.ms);
    const clean = unit.calls.filter(isClean);
    const rawLogits = new Map(find('raw-ort', unit.variant).calls.map((c) => [c.id, c.logits]));
    let maxDiff = 0;
    for (const call of unit.calls) {
      const ref = rawLogits.get(call.id);
      if (ref) call.logits.forEach((l, i) => (maxDiff = Math.max(maxDiff, Math.abs(l - ref[i]))));
    }
    return {
      system: unit.system,
      variant: unit.variant,
      calls: unit.calls.length,
      pairs: pairsOf(unit.calls),
      pairs_per_s: pairsOf(unit.calls) / (unit.wallMs / 1000),
      p50_ms: percentile(ms, 50),
      p95_ms: percentile(ms, 95),
      mean_ms: ms.reduce((a, b) => a + b, 0) / ms.length,
      clean_calls: clean.length,
      clean_pairs_per_s: throughput(clean).pairs_per_s,
      clean_p50_ms: percentile(clean.map((c) => c.ms), 50),
      clean_p95_ms: percentile(clean.map((c) => c.ms), 95),
      peak_rss_mb: unit.stats?.serverPeakRssMb ?? unit.stats?.peakRssMb,
      peak_rss_of: unit.system.startsWith('stdio') ? 'server process (node dist/cli.js)' : 'worker process',
      client_peak_rss_mb: unit.stats?.clientPeakRssMb,
      rss_before_load_mb: unit.ready?.rssBeforeLoadMb,
      load_ms: unit.ready?.loadMs,
      max_abs_logit_diff_vs_raw: maxDiff,
      other_cpu_load_cores: unit.foreignCpuMs / unit.wallMs,
      detail: unit.ready?.detail,
    };
  });
  const row = (system: SystemName, variant: Variant) => rows.find((r) => r.system === system && r.variant === variant)!;

  /**
   * A throughput ratio two ways: over every measured call, and paired: only the calls
   * (same ids) that were clean in both systems, which cancels bursts of outside load.
   */
  const ratios: { name: string; all: number; paired: number; pairedCalls: number }[] = [];
  const compare = (name: string, a: Unit, b: Unit, allA: number, allB: number) => {
    const cleanB = new Map(b.calls.filter(isClean).map((c) => [c.id, c]));
    const pairedA = a.calls.filter((c) => isClean(c) && cleanB.has(c.id));
    const pairedB = pairedA.map((c) => cleanB.get(c.id)!);
    ratios.push({ name, all: allA / allB, paired: throughput(pairedA).pairs_per_s / throughput(pairedB).pairs_per_s, pairedCalls: pairedA.length });
  };
  const concurrency: Record<string, unknown> = {};
  for (const v of variants) {
    const [raw, peer, engine, stdio, conc] = SYSTEMS.map((s) => find(s, v));
    compare(`stdio / raw-ort (${v})`, stdio, raw, row('stdio', v).pairs_per_s, row('raw-ort', v).pairs_per_s);
    compare(`stdio / transformers.js (${v})`, stdio, peer, row('stdio', v).pairs_per_s, row('transformers.js', v).pairs_per_s);
    compare(`engine / raw-ort (${v})`, engine, raw, row('engine', v).pairs_per_s, row('raw-ort', v).pairs_per_s);
    compare(`stdio / engine (${v})`, stdio, engine, row('stdio', v).pairs_per_s, row('engine', v).pairs_per_s);
    // Concurrent against sequential on exactly the calls the concurrent scenario made.
    const ids = new Set(conc.calls.map((c) => c.id));
    const seqSame = throughput(stdio.calls.filter((c) => ids.has(c.id)));
    compare(`stdio ${CONCURRENCY} concurrent / sequential (${v})`, conc, stdio, row('stdio-concurrent', v).pairs_per_s, seqSame.pairs_per_s);
    concurrency[v] = { calls: conc.calls.length, in_flight: CONCURRENCY, concurrent_pairs_per_s: row('stdio-concurrent', v).pairs_per_s, sequential_pairs_per_s_same_calls: seqSame.pairs_per_s };
  }
  if (variants.length === 2) {
    compare('int8 / fp32, stdio end to end', find('stdio', 'int8'), find('stdio', 'fp32'), row('stdio', 'int8').pairs_per_s, row('stdio', 'fp32').pairs_per_s);
    compare('int8 / fp32, raw-ort', find('raw-ort', 'int8'), find('raw-ort', 'fp32'), row('raw-ort', 'int8').pairs_per_s, row('raw-ort', 'fp32').pairs_per_s);
  }
  const cache = variants.flatMap((v) => {
    const c = find('stdio', v).cache;
    return c ? [{ variant: v, first_ms: median(c.first), repeated_ms: median(c.repeated), speedup: median(c.first) / median(c.repeated), first: c.first, repeated: c.repeated }] : [];
  });

  const table = markdownTable(
    ['system', 'variant', 'pairs/s', 'p50 ms', 'p95 ms', 'peak RSS MB', 'clean calls', 'clean pairs/s', 'clean p50 ms', 'other load', 'max |Δlogit| vs raw'],
    rows.map((r) => [
      r.system,
      r.variant,
      fmt(r.pairs_per_s),
      fmt(r.p50_ms, 0),
      fmt(r.p95_ms, 0),
      fmt(r.peak_rss_mb, 0),
      `${r.clean_calls}/${r.calls}`,
      fmt(r.clean_pairs_per_s),
      fmt(r.clean_p50_ms, 0),
      fmt(r.other_cpu_load_cores, 2),
      r.system === 'raw-ort' ? '-' : r.max_abs_logit_diff_vs_raw.toExponential(1),
    ]),
    [false, false, true, true, true, true, true, true, true, true, true],
  );
  const ratioTable = markdownTable(
    ['pairs/s ratio', 'all calls', 'clean, paired', 'paired calls'],
    [
      ...ratios.map((r) => [r.name, fmt(r.all, 2), fmt(r.paired, 2), String(r.pairedCalls)]),
      ...cache.map((c) => [`stdio cache speedup, first / repeated identical call (${c.variant})`, fmt(c.speedup, 2), '', String(c.first.length)]),
    ],
    [false, true, true, true],
  );
  const tuning = units
    .filter((u) => u.tuning)
    .map((u) => {
      const lines = u.tuning!.results.map((t) => `  ${t.kept ? '*' : ' '} ${planLabel(t.plan).padEnd(62)} ${t.meanMs.toFixed(0).padStart(6)} ms/call`);
      return `raw-ort ${u.variant} batching (ms per call, fastest of ${u.tuning!.passes} pass${u.tuning!.passes > 1 ? "es" : ""}, mean over ${u.tuning!.results[0].calls} calls; * = kept):\n${lines.join('\n')}`;
    })
    .join('\n');
  const cacheLines = cache
    .map((c) => `stdio ${c.variant}: first call ${fmt(c.first_ms, 0)} ms, repeated identical call ${fmt(c.repeated_ms, 0)} ms (median of ${c.first.length} / ${c.repeated.length})`)
    .join('\n');
  const m = ctx.meta;
  const header =
    `rerank-mcp benchmark, ${m.date}\n` +
    `machine: ${m.nproc} cores (${m.cpu}), ${m.memory_gb} GB, node ${m.node}, onnxruntime-node ${m.onnxruntime_node}, transformers.js ${m.transformers_js}\n` +
    `model: ${relative(ROOT, ctx.modelDir) || ctx.modelDir}; ${ctx.threads} intra-op threads everywhere\n` +
    `workload: ${ctx.workload.length} rerank calls x ${DOCS_PER_CALL} documents, ${ctx.tokens.tokens_per_pair_mean} tokens per pair ` +
    `(${ctx.tokens.tokens_per_pair_min}-${ctx.tokens.tokens_per_pair_max}), ${ctx.rounds} rounds; run took ${ctx.elapsedS.toFixed(0)} s ` +
    `(${(ctx.quiet.waitedMs / 1000).toFixed(0)} s of it waiting for a quiet machine, ${ctx.quiet.gaveUp} of ${ctx.quiet.waits} waits gave up)\n`;
  const noisiest = Math.max(...rows.map((r) => r.other_cpu_load_cores));
  const warning =
    noisiest > 0.1
      ? `\nWARNING: other processes used up to ${noisiest.toFixed(2)} of ${m.nproc} cores while systems were measured ("other load"); ` +
        `trust the clean columns and the paired ratios, or rerun on a quiet machine.\n`
      : '';
  const text =
    `\n${header}\n${table}\n\n${ratioTable}\n\n${tuning}\n\n${cacheLines}\n\n` +
    `pairs/s: pairs / wall time of the measured calls. p50/p95: latency of one 20-document call (stdio-concurrent: of one call among ${CONCURRENCY} in flight).\n` +
    `peak RSS: VmHWM of the worker process; for stdio, of the server process. other load: mean cores other processes kept busy meanwhile;\n` +
    `clean: calls during which other processes used < ${CLEAN_CORES} cores. paired: the ratio over the calls clean in both systems.\n` +
    warning;

  const json = {
    meta: {
      ...m,
      threads: ctx.threads,
      model_dir: ctx.modelDir,
      settings: { ...ctx.settings, concurrency: CONCURRENCY, peer_batch_size: PEER_BATCH_SIZE, quiet_cores: QUIET_CORES, clean_cores: CLEAN_CORES },
      elapsed_s: round(ctx.elapsedS, 1),
      quiet_wait_s: round(ctx.quiet.waitedMs / 1000, 1),
      quiet_waits: ctx.quiet.waits,
      quiet_waits_given_up: ctx.quiet.gaveUp,
    },
    workload: { calls: ctx.workload.length, documents_per_call: DOCS_PER_CALL, pairs: ctx.workload.length * DOCS_PER_CALL, ...ctx.tokens, triplets: relative(ROOT, TRIPLETS) },
    systems: rows.map((r) => ({
      ...r,
      pairs_per_s: round(r.pairs_per_s, 2),
      p50_ms: round(r.p50_ms, 1),
      p95_ms: round(r.p95_ms, 1),
      mean_ms: round(r.mean_ms, 1),
      clean_pairs_per_s: round(r.clean_pairs_per_s, 2),
      clean_p50_ms: round(r.clean_p50_ms, 1),
      clean_p95_ms: round(r.clean_p95_ms, 1),
      peak_rss_mb: round(r.peak_rss_mb ?? NaN, 1),
      client_peak_rss_mb: r.client_peak_rss_mb === undefined ? undefined : round(r.client_peak_rss_mb, 1),
      rss_before_load_mb: round(r.rss_before_load_mb ?? NaN, 1),
      load_ms: round(r.load_ms ?? NaN, 0),
      other_cpu_load_cores: round(r.other_cpu_load_cores, 3),
    })),
    ratios: ratios.map((r) => ({ ratio: r.name, all_calls: round(r.all, 3), clean_paired: round(r.paired, 3), paired_calls: r.pairedCalls })),
    concurrency,
    cache: cache.map((c) => ({ variant: c.variant, first_ms: c.first.map((x) => round(x, 1)), repeated_ms: c.repeated.map((x) => round(x, 1)), speedup: round(c.speedup, 3) })),
    raw_tuning: Object.fromEntries(
      units.filter((u) => u.tuning).map((u) => [u.variant, { best: planLabel(u.tuning!.best), candidates: u.tuning!.results.map((t) => ({ batching: planLabel(t.plan), mean_ms: round(t.meanMs, 1), calls: t.calls, kept: t.kept })) }]),
    ),
    per_call: Object.fromEntries(units.map((u) => [unitName(u), u.calls.map((c) => ({ id: c.id, ms: round(c.ms, 1), other_cores: round(c.otherCores, 2) }))])),
    report_text: text,
  };
  return { text, json };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

main().catch((err: Error) => {
  log(`error: ${err.stack ?? err.message}`);
  process.exit(1);
});
