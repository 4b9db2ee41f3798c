/**
 * What operating it costs: REST rerank throughput of one server with --metrics-port and
 * --log-format json (scraped every second, as Prometheus would, its JSON lines read by this
 * process) against one with neither, in the same run. Rounds alternate between the two so
 * that drift in the machine's load hits both alike; the ratio is on / off (goal ≥ 0.98).
 *
 *   npm run build && node --import tsx scripts/ops-overhead.ts [--model DIR] [--rounds 6] [--calls 40] [--concurrency 4]
 *
 * Default model: the MiniLM-L6-shaped fixture (real work per call). With tiny-ce (--model
 * pointing at it) inference is nearly free and the overhead shows at its largest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/net.js';
import { unpackedMiniLm } from '../test/helpers/fixtures.js';

const CLI = resolve(import.meta.dirname, '..', 'dist', 'cli.js');
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    rounds: { type: 'string', default: '6' },
    calls: { type: 'string', default: '40' },
    concurrency: { type: 'string', default: '4' },
    docs: { type: 'string', default: '20' },
  },
});
const MODEL = values.model ?? unpackedMiniLm();
const ROUNDS = Number(values.rounds);
const CALLS = Number(values.calls);
const CONCURRENCY = Number(values.concurrency);
const DOCS = Number(values.docs);
const progress = (line: string) => process.stderr.write(`[ops-overhead] ${line}\n`);

interface Server {
  child: ChildProcess;
  base: string;
  metrics?: string;
  lines: number;
}

async function start(on: boolean): Promise<Server> {
  const port = await freePort();
  const metricsPort = await freePort();
  const args = [CLI, '--http', '--port', String(port), '--model', MODEL, '--no-watch', ...(on ? ['--metrics-port', String(metricsPort), '--log-format', 'json'] : [])];
  const env = { ...process.env, RERANK_FEEDBACK_DB: join(mkdtempSync(join(tmpdir(), 'rerank-ops-bench-')), 'feedback.db') };
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const server: Server = { child, base: `http://127.0.0.1:${port}`, metrics: on ? `http://127.0.0.1:${metricsPort}/metrics` : undefined, lines: 0 };
  // Every log line is read, as a log shipper would read it.
  child.stderr!.on('data', (d: Buffer) => (server.lines += d.toString().split('\n').length - 1));
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`${server.base}/readyz`).then((r) => r.ok, () => false);
    if (ok) return server;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server (${on ? 'on' : 'off'}) not ready`);
}

let serial = 0;
const words = 'soil nitrogen wheat yield rainfall irrigation tractor harvest compost seed pest fungus drought cattle pasture'.split(' ');
const text = (n: number, len: number) => Array.from({ length: len }, (_, i) => words[(n * 7 + i * 3) % words.length]).join(' ') + ` ${n}`;

/** Calls per second for CALLS rerank calls, CONCURRENCY at a time; texts never repeat, so the score cache never answers. */
async function round(server: Server): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < CALLS) {
      next++;
      const id = serial++;
      const body = { query: text(id, 8), documents: Array.from({ length: DOCS }, (_, i) => text(id * 1000 + i, 40)) };
      const res = await fetch(`${server.base}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  // Prometheus scrapes every second or so while the load runs.
  const scraper = server.metrics ? setInterval(() => void fetch(server.metrics!).then((r) => r.text()).catch(() => undefined), 1000) : undefined;
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  clearInterval(scraper);
  return CALLS / ((performance.now() - started) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const off = await start(false);
const on = await start(true);
try {
  await round(off);
  await round(on); // warm-up of both, not counted
  const rates: { off: number[]; on: number[] } = { off: [], on: [] };
  for (let r = 0; r < ROUNDS; r++) {
    // ABBA order: neither mode always goes first.
    const order: ('off' | 'on')[] = r % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
    for (const mode of order) rates[mode].push(await round(mode === 'on' ? on : off));
    progress(`round ${r + 1}: off ${rates.off.at(-1)!.toFixed(1)} calls/s, on ${rates.on.at(-1)!.toFixed(1)} calls/s`);
  }
  const ratios = rates.on.map((v, i) => v / rates.off[i]);
  console.log(
    JSON.stringify({
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      loadavg: loadavg().map((l) => Number(l.toFixed(2))),
      model: MODEL,
      calls_per_round: CALLS,
      concurrency: CONCURRENCY,
      docs_per_call: DOCS,
      off_calls_per_s_median: Number(median(rates.off).toFixed(2)),
      on_calls_per_s_median: Number(median(rates.on).toFixed(2)),
      ratio_on_off_median: Number(median(ratios).toFixed(3)),
      ratio_of_totals: Number((rates.on.reduce((a, b) => a + b) / rates.off.reduce((a, b) => a + b)).toFixed(3)),
      json_log_lines_read: on.lines,
    }),
  );
} finally {
  off.child.kill('SIGTERM');
  on.child.kill('SIGTERM');
}
