/**
 * What the SQLite worker thread costs and buys (issue 21, item 3): sequential one-label writes
 * through the server's store (SqliteBackend, a worker thread that checks the -wal and main file
 * after each commit) against the same FeedbackStore run on the event loop, as the server did
 * before. Prints the median write latency of each, their ratio, and the longest the event loop
 * was held: a whole write on the loop, the worst timer delay with the worker. `--baseline DIR` times another build's dist/feedback/store.js too
 * (e.g. the main branch's, before the file checks).
 *
 *   node --import tsx scripts/feedback-worker-bench.ts [--writes 300] [--baseline /path/to/dist]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { FeedbackStore } from '../src/feedback/feedback-store.js';
import { openStore } from '../src/feedback/store.js';

const { values } = parseArgs({ options: { writes: { type: 'string', default: '300' }, baseline: { type: 'string' } } });
const writes = Number(values.writes);

interface Writer {
  record(items: { query: string; document: string; label: number }[]): unknown;
  close(): unknown;
}

/** `onLoop`: the writes run on the event loop, which is held for each one's whole duration. */
async function time(name: string, onLoop: boolean, open: (path: string) => Promise<Writer>): Promise<{ name: string; medianMs: number; lagMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'feedback-worker-bench-'));
  const store = await open(join(dir, 'feedback.db'));
  const ms: number[] = [];
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  for (let i = 0; i < writes; i++) {
    const t = performance.now();
    await store.record([{ query: `query ${i}`, document: `document ${i}`, label: i % 2 }]);
    ms.push(performance.now() - t);
  }
  lag.disable();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  ms.sort((a, b) => a - b);
  return { name, medianMs: ms[Math.floor(ms.length / 2)], lagMs: onLoop ? ms[ms.length - 1] : lag.max / 1e6 };
}

const runs = [await time('FeedbackStore on the event loop (before)', true, async (path) => FeedbackStore.open(path))];
if (values.baseline) {
  const { openStore: openBaseline } = (await import(join(values.baseline, 'feedback/store.js'))) as { openStore: (p: string) => Promise<Writer> };
  runs.push(await time(`baseline build ${values.baseline}`, true, openBaseline));
}
runs.push(await time('SqliteBackend, worker thread + file checks (after)', false, (path) => openStore(path) as Promise<Writer>));

console.log(`${writes} sequential one-label writes, synchronous=FULL; ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores`);
const base = runs[0].medianMs;
for (const r of runs) console.log(`${r.name.padEnd(58)} median ${r.medianMs.toFixed(2)} ms (${(r.medianMs / base).toFixed(2)}x)  event loop held up to ${r.lagMs.toFixed(1)} ms`);
