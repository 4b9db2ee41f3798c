/**
 * Feedback store costs, measured in one run so the ratios compare like with like:
 *
 *  1. write latency (one acknowledged label per call, sequential, then 4 writers at once) on
 *     SQLite and on PostgreSQL, through the store interface the server uses;
 *  2. the duplicate check: a label's write time with 10 vs 1500 stored 30k-character labels of
 *     the same query (it once scanned them all);
 *  3. PRAGMA quick_check (run on every open) and integrity_check (feedback check) on a ~100 MB file.
 *
 *   node --import tsx scripts/feedback-store-bench.ts [--writes 300] [--pg postgres://…] [--skip-integrity]
 *
 * Without --pg a throwaway PostgreSQL cluster is started (test/helpers/postgres.ts). Results
 * are in README.md (Feedback store).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { FeedbackStore } from '../src/feedback/feedback-store.js';
import { openStore, type FeedbackBackend } from '../src/feedback/store.js';
import { postgresUnavailable, startPostgres } from '../test/helpers/postgres.js';

const { values } = parseArgs({ options: { writes: { type: 'string', default: '300' }, pg: { type: 'string' }, 'skip-integrity': { type: 'boolean', default: false } } });
const WRITES = Number(values.writes);
const dir = mkdtempSync(join(tmpdir(), 'rerank-store-bench-'));

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const ms = (v: number) => `${v.toFixed(2)} ms`;

async function writeLatency(store: FeedbackBackend, writers: number): Promise<{ p50: number; p99: number; perSecond: number }> {
  const times: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; i < WRITES / writers; i++) {
        const t = performance.now();
        await store.record([{ query: `bench query ${i % 50}`, document: `writer ${w} document ${i} `.repeat(20), label: i % 2, source: 'bench' }]);
        times.push(performance.now() - t);
      }
    }),
  );
  const elapsed = performance.now() - start;
  times.sort((a, b) => a - b);
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), perSecond: (times.length / elapsed) * 1000 };
}

async function main(): Promise<void> {
  console.log(`feedback store bench: ${WRITES} acknowledged single-label writes per case`);
  let pgUrl = values.pg;
  let stopPg: (() => void) | undefined;
  if (!pgUrl) {
    const why = postgresUnavailable();
    if (why) console.log(`PostgreSQL skipped: ${why}`);
    else {
      const server = await startPostgres();
      stopPg = () => server.destroy();
      pgUrl = await server.createDatabase('bench');
    }
  }
  try {
    const results: Record<string, Awaited<ReturnType<typeof writeLatency>>> = {};
    for (const writers of [1, 4]) {
      const sqlite = await openStore(join(dir, `w${writers}.db`));
      results[`sqlite x${writers}`] = await writeLatency(sqlite, writers);
      await sqlite.close();
      if (pgUrl) {
        const pg = await openStore(pgUrl);
        results[`postgres x${writers}`] = await writeLatency(pg, writers);
        await pg.close();
      }
    }
    for (const [name, r] of Object.entries(results)) console.log(`  ${name.padEnd(12)} p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  ${r.perSecond.toFixed(0)} writes/s`);
    for (const writers of [1, 4]) {
      const s = results[`sqlite x${writers}`];
      const p = results[`postgres x${writers}`];
      if (p) console.log(`  postgres/sqlite with ${writers} writer(s): p50 x${(p.p50 / s.p50).toFixed(2)}, throughput x${(p.perSecond / s.perSecond).toFixed(2)}`);
    }

    // 2. duplicate check
    const dup = FeedbackStore.open(join(dir, 'dup.db'));
    const long = (i: number) => `${i} `.padEnd(30_000, 'lorem ipsum ');
    const timed = () => {
      const t = performance.now();
      for (let k = 0; k < 20; k++) dup.record([{ query: 'the query', document: `short ${k} ${Math.random()}`, label: 1 }]);
      return (performance.now() - t) / 20;
    };
    dup.record(Array.from({ length: 10 }, (_, i) => ({ query: 'the query', document: long(i), label: 1 })));
    const few = timed();
    dup.record(Array.from({ length: 1490 }, (_, i) => ({ query: 'the query', document: long(i + 10), label: 1 })));
    const many = timed();
    dup.close();
    console.log(`duplicate check: a write with 10 stored 30k-char labels of its query ${ms(few)}, with 1500 ${ms(many)} (x${(many / few).toFixed(2)})`);

    // 3. integrity checks
    if (!values['skip-integrity']) {
      const path = join(dir, 'big.db');
      const store = FeedbackStore.open(path);
      for (let b = 0; b < 100; b++) store.record(Array.from({ length: 1000 }, (_, i) => ({ query: `query ${b}`, document: `document ${b}.${i} `.repeat(45), label: i % 2 })));
      store.close();
      const mb = statSync(path).size / 1e6;
      for (const pragma of ['quick_check', 'integrity_check']) {
        const db = new Database(path, { readonly: true });
        const t = performance.now();
        db.pragma(pragma);
        console.log(`${pragma} on a ${mb.toFixed(0)} MB database: ${ms(performance.now() - t)}`);
        db.close();
      }
    }
  } finally {
    stopPg?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
