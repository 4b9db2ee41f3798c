/**
 * `npm run load -- --scenario replicas`: what replicas buy on this machine. The same REST
 * rerank load (--replica-clients concurrent clients, each one call at a time: 20 documents from
 * the parity set, score cache off so every pair is computed) runs against
 *   1. one replica, directly (the baseline),
 *   2. one replica behind haproxy (deploy/haproxy.cfg: what the balancer costs),
 *   3. N replicas behind haproxy (--replicas, default 3), round-robin, stateless,
 * all sharing one temp SQLite feedback file (each call is logged, as in production). Reports
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

async function drive(url: string, o: ReplicasOptions, pids: number[], queries: string[], docs: string[]): Promise<Omit<Row, 'setup' | 'replicas' | 'rss_idle_mb'>> {
  const rssMax = pids.map(() => 0);
  const sampler = setInterval(() => pids.forEach((pid, i) => (rssMax[i] = Math.max(rssMax[i], rss(pid)))), 500);
  const latencies: number[] = [];
  const servedBy: Record<string, number> = {};
  let errors = 0;
  const errorStatuses: Record<number, number> = {};
  const phase = async (seconds: number, measure: boolean) => {
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: o.clients }, async (_, c) => {
        const rand = prng(o.seed * 1000 + c + (measure ? 1 : 0));
        while (performance.now() < end) {
          const body = { query: queries[Math.floor(rand() * queries.length)], documents: Array.from({ length: 20 }, () => docs[Math.floor(rand() * docs.length)]), top_n: 5 };
          const t0 = performance.now();
          try {
            const res = await fetch(`${url}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
            await res.arrayBuffer();
            if (!measure) continue;
            if (res.status !== 200) {
              errors++;
              errorStatuses[res.status] = (errorStatuses[res.status] ?? 0) + 1;
              continue;
            }
            else latencies.push(performance.now() - t0);
            const by = res.headers.get('x-rerank-replica') ?? 'direct';
            servedBy[by] = (servedBy[by] ?? 0) + 1;
          } catch {
            if (measure) {
              errors++;
              errorStatuses[0] = (errorStatuses[0] ?? 0) + 1;
            }
          }
        }
      }),
    );
  };
  await phase(o.warmupSeconds, false);
  const t0 = performance.now();
  await phase(o.seconds, true);
  const elapsed = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  latencies.sort((a, b) => a - b);
  return {
    calls: latencies.length,
    errors,
    calls_per_s: Math.round((latencies.length / elapsed) * 10) / 10,
    p50_ms: Math.round(percentile(latencies, 50)),
    p99_ms: Math.round(percentile(latencies, 99)),
    rss_max_mb: rssMax.map(mb),
    served_by: servedBy,
    error_statuses: errorStatuses,
  };
}

export async function runReplicasScenario(o: ReplicasOptions): Promise<{ rows: Row[]; ratio: number; text: string }> {
  const parity = JSON.parse(readFileSync(o.parityFile, 'utf8')) as { pairs: [string, string][] };
  const queries = [...new Set(parity.pairs.map(([q]) => q))];
  const docs = [...new Set(parity.pairs.map(([, d]) => d))];
  const env: Record<string, string> = { RERANK_CACHE_SIZE: '0', ...(o.threads ? { RERANK_THREADS: String(o.threads) } : {}) };
  const rows: Row[] = [];
  const setups: { setup: string; n: number; balancer: boolean }[] = [
    { setup: '1 replica, direct', n: 1, balancer: false },
    { setup: '1 replica, haproxy', n: 1, balancer: true },
    { setup: `${o.replicas} replicas, haproxy`, n: o.replicas, balancer: true },
  ];
  for (const s of setups) {
    const db = join(mkdtempSync(join(tmpdir(), 'rerank-load-replicas-')), 'feedback.db');
    let replicas: HttpServerProcess[] = [];
    let lb: Awaited<ReturnType<typeof startHaproxy>> | undefined;
    try {
      replicas = await startReplicas(s.n, db, ['--model', o.model], env);
      // Let each load its model before the idle sample and the load.
      for (const r of replicas) {
        const deadline = Date.now() + 60_000;
        while (!/model loaded/.test(r.stderr()) && Date.now() < deadline) await sleep(100);
      }
      const pids = replicas.map((r) => r.child.pid!);
      const idle = pids.map((pid) => mb(rss(pid)));
      lb = s.balancer ? await startHaproxy(replicas.map((r) => r.url), { shippedCheckInterval: true }) : undefined;
      const url = lb ? lb.url : new URL(replicas[0].url).origin;
      rows.push({ setup: s.setup, replicas: s.n, rss_idle_mb: idle, ...(await drive(url, o, pids, queries, docs)) });
    } finally {
      await lb?.stop();
      await Promise.all(replicas.map((r) => r.stop()));
    }
  }
  const base = rows[1].calls_per_s;
  const ratio = Math.round((rows[2].calls_per_s / base) * 100) / 100;
  const lines = [
    `Replicas: ${o.clients} REST clients, rerank of 20 documents each call (score cache off), ${o.warmupSeconds} s warm-up + ${o.seconds} s per setup; nproc ${availableParallelism()}, load avg ${loadavg()[0].toFixed(2)}, threads per replica ${o.threads ?? 'all cores'}`,
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
