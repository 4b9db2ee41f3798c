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
import { mkdtempSync, readFileSync } from 'node:fs';
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
  tail: string;
}

async function start(on: boolean): Promise<Server> {
  const port = await freePort();
  const metricsPort = await freePort();
  const args = [CLI, '--http', '--port', String(port), '--model', MODEL, '--no-watch', ...(on ? ['--metrics-port', String(metricsPort), '--log-format', 'json'] : [])];
  const env = { ...process.env, RERANK_FEEDBACK_DB: join(mkdtempSync(join(tmpdir(), 'rerank-ops-bench-')), 'feedback.db') };
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const server: Server = { child, base: `http://127.0.0.1:${port}`, metrics: on ? `http://127.0.0.1:${metricsPort}/metrics` : undefined, lines: 0, tail: '' };
  // Every log line is read, as a log shipper would read it.
  child.stderr!.on('data', (d: Buffer) => {
    server.lines += d.toString().split('\n').length - 1;
    server.tail = (server.tail + d.toString()).slice(-2000);
  });
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

/**
 * CPU seconds the server has used (all its threads, ONNX Runtime's included): on a machine
 * shared with other work, CPU per call moves far less than calls per second.
 */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime, fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Calls per second for CALLS rerank calls, CONCURRENCY at a time; texts never repeat, so the score cache never answers. */
async function round(server: Server): Promise<{ rate: number; cpuPerCall: number }> {
  let next = 0;
  const cpuBefore = cpuSeconds(server.child.pid!);
  const started = performance.now();
  const worker = async () => {
    while (next < CALLS) {
      next++;
      const id = serial++;
      const body = { query: text(id, 8), documents: Array.from({ length: DOCS }, (_, i) => text(id * 1000 + i, 40)) };
      const post = () => fetch(`${server.base}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      // A kept-alive connection the server closed as idle just then resets: that call is sent again.
      const res = await post().catch((err: Error) => {
        if (server.child.exitCode !== null) throw new Error(`server exited ${server.child.exitCode}: ${server.tail}`);
        progress(`retrying after ${(err.cause as Error | undefined)?.message ?? err.message}`);
        return post();
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  // Prometheus scrapes every second or so while the load runs.
  const scraper = server.metrics ? setInterval(() => void fetch(server.metrics!).then((r) => r.text()).catch(() => undefined), 1000) : undefined;
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  clearInterval(scraper);
  return { rate: CALLS / ((performance.now() - started) / 1000), cpuPerCall: (cpuSeconds(server.child.pid!) - cpuBefore) / CALLS };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The same path measured in process, free of the machine's load: what one request costs the
 * observability module (record, engine timings, end: metrics, JSON line, _meta), on vs off.
 */
async function perCallMicroseconds(): Promise<{ off: number; on: number }> {
  const { beginCall, startTelemetry, stopTelemetry } = await import('../src/observability/index.js');
  const { setLogFormat } = await import('../src/log.js');
  const timings = { startedAt: 0, tokenizationMs: 1, queuedAt: 1, queueMs: 2, inferenceMs: 5, tokens: 400, characters: 1600, pairs: 20, cached: 0, batches: 1 };
  const one = async () => {
    const record = beginCall({ face: 'rest', transport: 'http', method: '/v1/rerank', client: 'bench' });
    await record.run(async () => record.addEngine(timings));
    record.timingHeaders();
    record.end(undefined, { status: 200 });
  };
  const write = process.stderr.write.bind(process.stderr);
  let bytes = 0;
  process.stderr.write = ((chunk: string) => ((bytes += chunk.length), true)) as typeof process.stderr.write;
  const time = async (n: number) => {
    const start = performance.now();
    for (let i = 0; i < n; i++) await one();
    return ((performance.now() - start) * 1000) / n;
  };
  try {
    await time(2000);
    const off = median([await time(20_000), await time(20_000), await time(20_000)]);
    await startTelemetry({ metricsPort: 0, host: '127.0.0.1' });
    setLogFormat('json');
    await time(2000);
    const on = median([await time(20_000), await time(20_000), await time(20_000)]);
    await stopTelemetry();
    return { off, on };
  } finally {
    process.stderr.write = write;
    setLogFormat('text');
    if (bytes === 0) throw new Error('no JSON line was written');
  }
}

const off = await start(false);
const on = await start(true);
try {
  await round(off);
  await round(on); // warm-up of both, not counted
  const rates: { off: number[]; on: number[] } = { off: [], on: [] };
  const cpu: { off: number[]; on: number[] } = { off: [], on: [] };
  for (let r = 0; r < ROUNDS; r++) {
    // ABBA order: neither mode always goes first.
    const order: ('off' | 'on')[] = r % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
    for (const mode of order) {
      const result = await round(mode === 'on' ? on : off);
      rates[mode].push(result.rate);
      cpu[mode].push(result.cpuPerCall);
    }
    progress(`round ${r + 1}: off ${rates.off.at(-1)!.toFixed(1)} calls/s ${(cpu.off.at(-1)! * 1000).toFixed(1)} ms CPU/call, on ${rates.on.at(-1)!.toFixed(1)} calls/s ${(cpu.on.at(-1)! * 1000).toFixed(1)} ms CPU/call`);
  }
  const ratios = rates.on.map((v, i) => v / rates.off[i]);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
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
      off_cpu_ms_per_call: Number(((sum(cpu.off) / ROUNDS) * 1000).toFixed(2)),
      on_cpu_ms_per_call: Number(((sum(cpu.on) / ROUNDS) * 1000).toFixed(2)),
      // What CPU-bound throughput would be, on / off: the number least moved by other work on the machine.
      cpu_throughput_ratio_on_off: Number((sum(cpu.off) / sum(cpu.on)).toFixed(3)),
      json_log_lines_read: on.lines,
      observability_us_per_call: await perCallMicroseconds().then(({ off, on }) => ({ off: Number(off.toFixed(2)), on: Number(on.toFixed(2)) })),
    }),
  );
} finally {
  off.child.kill('SIGTERM');
  on.child.kill('SIGTERM');
}
