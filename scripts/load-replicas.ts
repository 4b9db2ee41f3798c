/**
 * `npm run load -- --scenario replicas`: what replicas buy on this machine. The same REST
 * rerank load (--replica-clients concurrent clients, each one call at a time: 20 documents from
 * the parity set, score cache off so every pair is computed) runs against
 *   1. one replica, directly (the baseline),
 *   2. one replica behind haproxy (deploy/haproxy.cfg: what the balancer costs),
 *   3. N replicas behind haproxy (--replicas, default 3), round-robin, stateless,
 * taking turns in short rounds (--replica-rounds) so the drift of other load on the machine
 * hits all three alike, all sharing one temp SQLite feedback file (each call is logged, as in production). Reports
 * throughput, p50/p99 through the balancer, the ratio of N replicas to one, and each
 * replica's RSS (idle after start, max under load) so a team can size a deployment.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHaproxy, startReplicas } from '../test/helpers/replicas.js';
import type { HttpServerProcess } from '../test/helpers/mcp.js';

export interface ReplicasOptions {
  model: string;
  parityFile: string;
  replicas: number;
  clients: number;
  seconds: number;
  warmupSeconds: number;
  /** RERANK_THREADS per replica; undefined = ONNX Runtime's default (all cores). */
  threads?: number;
  seed: number;
  /** The setups take turns this many times, each for seconds / rounds. */
  rounds: number;
}

interface Row {
  setup: string;
  replicas: number;
  calls: number;
  errors: number;
  calls_per_s: number;
  p50_ms: number;
  p99_ms: number;
  rss_idle_mb: number[];
  rss_max_mb: number[];
  served_by: Record<string, number>;
  error_statuses: Record<number, number>;
}

const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] : NaN);

function rss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

interface Acc {
  latencies: number[];
  errors: number;
  errorStatuses: Record<number, number>;
  servedBy: Record<string, number>;
  seconds: number;
  rssMax: number[];
}

/** `seconds` of the load against `url`, added to `acc`; not measured when `acc` is undefined (warm-up). */
async function drive(url: string, o: ReplicasOptions, seconds: number, pids: number[], queries: string[], docs: string[], round: number, acc?: Acc): Promise<void> {
  const sampler = acc ? setInterval(() => pids.forEach((pid, i) => (acc.rssMax[i] = Math.max(acc.rssMax[i], rss(pid)))), 500) : undefined;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: o.clients }, async (_, c) => {
      const rand = prng(o.seed * 100_000 + round * 100 + c + 1);
      while (performance.now() < end) {
        const body = { query: queries[Math.floor(rand() * queries.length)], documents: Array.from({ length: 20 }, () => docs[Math.floor(rand() * docs.length)]), top_n: 5 };
        const start = performance.now();
        try {
          const res = await fetch(`${url}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          await res.arrayBuffer();
          if (!acc) continue;
          if (res.status !== 200) {
            acc.errors++;
            acc.errorStatuses[res.status] = (acc.errorStatuses[res.status] ?? 0) + 1;
            continue;
          }
          acc.latencies.push(performance.now() - start);
          const by = res.headers.get('x-rerank-replica') ?? 'direct';
          acc.servedBy[by] = (acc.servedBy[by] ?? 0) + 1;
        } catch {
          if (acc) {
            acc.errors++;
            acc.errorStatuses[0] = (acc.errorStatuses[0] ?? 0) + 1;
          }
        }
      }
    }),
  );
  if (acc) acc.seconds += (performance.now() - t0) / 1000;
  if (sampler) clearInterval(sampler);
}

export async function runReplicasScenario(o: ReplicasOptions): Promise<{ rows: Row[]; ratio: number; text: string }> {
  const parity = JSON.parse(readFileSync(o.parityFile, 'utf8')) as { pairs: [string, string][] };
  const queries = [...new Set(parity.pairs.map(([q]) => q))];
  const docs = [...new Set(parity.pairs.map(([, d]) => d))];
  const env: Record<string, string> = { RERANK_CACHE_SIZE: '0', ...(o.threads ? { RERANK_THREADS: String(o.threads) } : {}) };
  const rows: Row[] = [];
  const db = join(mkdtempSync(join(tmpdir(), 'rerank-load-replicas-')), 'feedback.db');
  const fleets: HttpServerProcess[][] = [];
  const balancers: Awaited<ReturnType<typeof startHaproxy>>[] = [];
  try {
    // Both fleets stay up for the whole run and the setups take turns in short rounds, so that
    // the other load on a shared machine drifts over all of them alike; an idle fleet costs no CPU.
    for (const n of [1, o.replicas]) {
      const fleet = await startReplicas(n, db, ['--model', o.model], env);
      fleets.push(fleet);
      for (const r of fleet) {
        const deadline = Date.now() + 60_000;
        while (!/model loaded/.test(r.stderr()) && Date.now() < deadline) await sleep(100);
      }
    }
    const idle = fleets.map((fleet) => fleet.map((r) => mb(rss(r.child.pid!))));
    for (const fleet of fleets) balancers.push(await startHaproxy(fleet.map((r) => r.url), { shippedCheckInterval: true }));
    const setups = [
      { setup: '1 replica, direct', fleet: 0, url: new URL(fleets[0][0].url).origin },
      { setup: '1 replica, haproxy', fleet: 0, url: balancers[0].url },
      { setup: `${o.replicas} replicas, haproxy`, fleet: 1, url: balancers[1].url },
    ];
    const accs: Acc[] = setups.map((s) => ({ latencies: [], errors: 0, errorStatuses: {}, servedBy: {}, seconds: 0, rssMax: fleets[s.fleet].map(() => 0) }));
    const pids = (i: number) => fleets[setups[i].fleet].map((r) => r.child.pid!);
    for (let i = 0; i < setups.length; i++) await drive(setups[i].url, o, o.warmupSeconds, pids(i), queries, docs, 0);
    const rounds = Math.max(1, o.rounds);
    for (let round = 1; round <= rounds; round++) {
      for (let i = 0; i < setups.length; i++) await drive(setups[i].url, o, o.seconds / rounds, pids(i), queries, docs, round, accs[i]);
    }
    setups.forEach((s, i) => {
      const a = accs[i];
      a.latencies.sort((x, y) => x - y);
      rows.push({
        setup: s.setup,
        replicas: fleets[s.fleet].length,
        calls: a.latencies.length,
        errors: a.errors,
        calls_per_s: Math.round((a.latencies.length / a.seconds) * 10) / 10,
        p50_ms: Math.round(percentile(a.latencies, 50)),
        p99_ms: Math.round(percentile(a.latencies, 99)),
        rss_idle_mb: idle[s.fleet],
        rss_max_mb: a.rssMax.map(mb),
        served_by: a.servedBy,
        error_statuses: a.errorStatuses,
      });
    });
  } finally {
    await Promise.all(balancers.map((b) => b.stop()));
    await Promise.all(fleets.flat().map((r) => r.stop()));
  }
  const base = rows[1].calls_per_s;
  const ratio = Math.round((rows[2].calls_per_s / base) * 100) / 100;
  const lines = [
    `Replicas: ${o.clients} REST clients, rerank of 20 documents each call (score cache off), ${o.warmupSeconds} s warm-up, then ${o.seconds} s per setup in ${o.rounds} alternating rounds; nproc ${availableParallelism()}, load avg ${loadavg()[0].toFixed(2)}, threads per replica ${o.threads ?? 'all cores'}`,
    '',
    '| setup | calls | errors | calls/s | p50 ms | p99 ms | RSS idle MB (per replica) | RSS max MB (per replica) |',
    '|:--|--:|--:|--:|--:|--:|:--|:--|',
    ...rows.map((r) => `| ${r.setup} | ${r.calls} | ${r.errors} | ${r.calls_per_s} | ${r.p50_ms} | ${r.p99_ms} | ${r.rss_idle_mb.join(', ')} | ${r.rss_max_mb.join(', ')} |`),
    '',
    `${o.replicas} replicas / 1 replica through haproxy: ${ratio}x throughput; haproxy / direct p50: ${Math.round((rows[1].p50_ms / rows[0].p50_ms) * 100) / 100}x`,
    ...rows.filter((r) => r.errors > 0).map((r) => `errors in "${r.setup}" by HTTP status (0 = no response): ${JSON.stringify(r.error_statuses)}`),
    `calls per replica (${rows[2].setup}): ${Object.entries(rows[2].served_by).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  ];
  return { rows, ratio, text: lines.join('\n') };
}
