/**
 * Four stdio clients on the MiniLM-L6-shaped fixture, in the same run: each with its own
 * `--standalone` server, then all four through shims to the one shared daemon. Measures the total
 * RSS of every rerank-mcp process (shims + daemon), the aggregate throughput of concurrent rerank
 * calls, the latency of one client's small score_pair while the three others rerank 150 documents
 * each, and the time from a client's spawn to its first answered call (shared: the daemon already
 * warm; standalone: the process loads the model itself). Prints ratios shared/standalone.
 * Run: `npm run daemon-bench` (builds first) [-- --rounds 3].
 */
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ensureModel, readTriplets } from './bench/workload.js';
import { procStatusMb } from './bench/procfs.js';
import { FIXTURES } from '../test/helpers/fixtures.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const MODEL = join(ROOT, '.cache', 'models', 'minilm-l6-ternary');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'latency-seconds': { type: 'string', default: '8' },
    // A loaded machine: shorter documents keep the run short; the ratios are what matters.
    'max-chars': { type: 'string', default: '0' },
  },
});
const ROUNDS = Number(values.rounds);
const LATENCY_MS = Number(values['latency-seconds']) * 1000;
const MAX_CHARS = Number(values['max-chars']);
const progress = (line: string) => process.stderr.write(`[daemon-bench] ${line}\n`);

ensureModel(join(FIXTURES, 'models', 'minilm-l6-ternary'), MODEL);
const texts = readTriplets(join(FIXTURES, 'agro', 'triplets.jsonl'))
  .flatMap((t) => [t.positive_text, ...t.negative_texts])
  .map((t) => (MAX_CHARS > 0 ? t.slice(0, MAX_CHARS) : t));
const queries = readTriplets(join(FIXTURES, 'agro', 'triplets.jsonl')).map((t) => t.query);
let serial = 0;
/** Distinct documents every call, so that neither mode profits from its score cache. */
const documents = (n: number) => Array.from({ length: n }, (_, i) => `${texts[(serial + i) % texts.length]} (${serial++})`);

type Mode = 'standalone' | 'shared';
interface Conn {
  client: Client;
  pid: number;
}

const daemonDir = mkdtempSync(join(tmpdir(), 'rerank-daemon-bench-'));
const env = {
  ...(process.env as Record<string, string>),
  RERANK_DAEMON_DIR: daemonDir,
  RERANK_FEEDBACK_DB: join(mkdtempSync(join(tmpdir(), 'rerank-daemon-bench-db-')), 'feedback.db'),
};

async function connect(mode: Mode, name: string): Promise<Conn> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, '--model', MODEL, ...(mode === 'standalone' ? ['--standalone'] : [])], env, stderr: 'ignore' });
  const client = new Client({ name, version: '0' });
  await client.connect(transport);
  return { client, pid: transport.pid! };
}

const daemonPids = (): number[] => {
  const status = JSON.parse(execFileSync(process.execPath, [CLI, 'daemon', 'status'], { env, encoding: 'utf8' })) as { daemons: { pid: number }[] };
  return status.daemons.map((d) => d.pid);
};

const scorePair = (c: Conn) => c.client.callTool({ name: 'score_pair', arguments: { query: 'where is bm25?', document: 'def bm25(q): ...' } });
const rerank = (c: Conn, n: number) => c.client.callTool({ name: 'rerank', arguments: { query: queries[serial % queries.length], documents: documents(n), return_documents: false } }, undefined, { timeout: 600_000 });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function measure(mode: Mode) {
  progress(`${mode}: starting 4 clients`);
  const conns = await Promise.all(['claude-desktop', 'cursor', 'vscode', 'claude-code'].map((n) => connect(mode, n)));
  await Promise.all(conns.map(scorePair)); // every model loaded and warm
  await Promise.all(conns.map((c) => rerank(c, 50)));
  const pids = [...conns.map((c) => c.pid), ...(mode === 'shared' ? daemonPids() : [])];
  const rss = pids.reduce((n, pid) => n + procStatusMb(pid, 'VmRSS'), 0);
  const shimRss = mode === 'shared' ? procStatusMb(conns[0].pid, 'VmRSS') : undefined;

  progress(`${mode}: ${Math.round(rss)} MB in ${pids.length} processes; throughput`);
  // Aggregate throughput: every client keeps 2 calls of 50 documents under way, 6 calls each.
  const throughputs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    await Promise.all(conns.map(async (c) => {
      for (let i = 0; i < 3; i++) await Promise.all([rerank(c, 50), rerank(c, 50)]);
    }));
    throughputs.push((4 * 6 * 50) / ((performance.now() - t0) / 1000));
  }

  progress(`${mode}: small-call latency under load`);
  // One client's small call while three others rerank 150 documents each, back to back.
  let busy = true;
  const heavy = conns.slice(1).map(async (c) => {
    while (busy) await rerank(c, 150);
  });
  const latencies: number[] = [];
  const end = performance.now() + LATENCY_MS;
  await new Promise((r) => setTimeout(r, 300));
  while (performance.now() < end) {
    const t0 = performance.now();
    await scorePair(conns[0]);
    latencies.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 100));
  }
  busy = false;
  await Promise.all(heavy);

  progress(`${mode}: spawn to first call`);
  // Spawn to first answered call; shared: with the daemon (and the other clients) still up.
  const starts: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    const c = await connect(mode, `late-${r}`);
    await scorePair(c);
    starts.push(performance.now() - t0);
    await c.client.close();
  }
  await Promise.all(conns.map((c) => c.client.close()));
  return {
    processes: pids.length,
    total_rss_mb: Math.round(rss),
    shim_rss_mb: shimRss === undefined ? undefined : Math.round(shimRss),
    throughput_pairs_per_s: Math.round(median(throughputs)),
    small_call_ms: { median: Math.round(median(latencies)), p95: Math.round(quantile(latencies, 0.95)), max: Math.round(Math.max(...latencies)), n: latencies.length },
    first_call_after_spawn_ms: Math.round(median(starts)),
  };
}

const standalone = await measure('standalone');
const shared = await measure('shared');
execFileSync(process.execPath, [CLI, 'daemon', 'stop'], { env, stdio: 'ignore' });

const result = {
  machine: { cpus: cpus().length, load_average_at_end: loadavg().map((l) => +l.toFixed(1)), model: 'minilm-l6-ternary (fp32)', node: process.version, rounds: ROUNDS, max_chars: MAX_CHARS || null },
  standalone,
  shared,
  ratios: {
    total_rss: +(shared.total_rss_mb / standalone.total_rss_mb).toFixed(2),
    throughput: +(shared.throughput_pairs_per_s / standalone.throughput_pairs_per_s).toFixed(2),
    small_call_median: +(shared.small_call_ms.median / standalone.small_call_ms.median).toFixed(2),
    first_call_after_spawn: +(shared.first_call_after_spawn_ms / standalone.first_call_after_spawn_ms).toFixed(2),
  },
};
console.log(JSON.stringify(result, null, 2));
const row = (name: string, a: unknown, b: unknown, ratio: number) => console.log(`| ${name} | ${a} | ${b} | ${ratio} |`);
console.log('\n| 4 stdio clients | standalone | shared daemon | shared / standalone |\n|---|---|---|---|');
row('total RSS of rerank-mcp processes (MB)', `${standalone.total_rss_mb} (${standalone.processes} processes)`, `${shared.total_rss_mb} (${shared.processes}: 4 shims of ${shared.shim_rss_mb} MB + daemon)`, result.ratios.total_rss);
row('aggregate throughput (pairs/s)', standalone.throughput_pairs_per_s, shared.throughput_pairs_per_s, result.ratios.throughput);
row('small score_pair while 3 clients rerank 150 docs: median / p95 / max (ms)', `${standalone.small_call_ms.median} / ${standalone.small_call_ms.p95} / ${standalone.small_call_ms.max}`, `${shared.small_call_ms.median} / ${shared.small_call_ms.p95} / ${shared.small_call_ms.max}`, result.ratios.small_call_median);
row('spawn to first answered call (ms)', standalone.first_call_after_spawn_ms, shared.first_call_after_spawn_ms, result.ratios.first_call_after_spawn);
mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
writeFileSync(join(ROOT, 'bench-results', 'daemon-bench.json'), JSON.stringify(result, null, 2) + '\n');
