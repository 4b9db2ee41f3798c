/**
 * Sweeps --batch-wait-ms: how long an idle batch queue waits for concurrent calls to join
 * its first batch. One server process per wait (the built `dist/cli.js` over stdio, score
 * cache off), driven by the MCP SDK's Client, in rotating order round by round so that
 * drift in the VM's speed hits every wait alike. Each round, every server gets the same:
 *
 *   - 2 calls one at a time (what a single agent does: the wait is pure added latency),
 *   - a wave of 8 calls sent at once (the wait decides how many of them share batches).
 *
 *   node --import tsx scripts/batch-wait.ts [--waits 0,1,2,5,10,20] [--variant fp32|int8]
 *                                           [--rounds 4] [--threads N] [--model DIR]
 *
 * Run on a quiet machine after `npm run build`. Prints one line per wait; see
 * docs/benchmarks.md for a recorded run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { callFor, ensureModel, readTriplets } from './bench/workload.js';
import type { Call } from './bench/protocol.js';
import { FIXTURES } from '../test/helpers/fixtures.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const SEQUENTIAL_CALLS = 2;
const WAVE_CALLS = 8;

const { values: opts } = parseArgs({
  options: {
    waits: { type: 'string', default: '0,1,2,5,10,20' },
    variant: { type: 'string', default: 'fp32' },
    rounds: { type: 'string', default: '4' },
    threads: { type: 'string', default: String(availableParallelism()) },
    model: { type: 'string' },
  },
  strict: true,
});
const WAITS = opts.waits!.split(',').map(Number);
if (WAITS.some((w) => !Number.isInteger(w) || w < 0)) throw new Error(`--waits takes whole milliseconds >= 0, got ${opts.waits}`);
const ROUNDS = Number(opts.rounds);
const MODEL = opts.model ? resolve(opts.model) : join(ROOT, '.cache', 'models', 'minilm-l6-ternary');
if (!opts.model) ensureModel(join(FIXTURES, 'models', 'minilm-l6-ternary'), MODEL);

const triplets = readTriplets(join(FIXTURES, 'agro', 'triplets.jsonl'));
const CALLS_PER_ROUND = SEQUENTIAL_CALLS + WAVE_CALLS;
if (ROUNDS * CALLS_PER_ROUND > triplets.length) throw new Error(`at most ${Math.floor(triplets.length / CALLS_PER_ROUND)} rounds: the workload has ${triplets.length} calls`);

interface Server {
  wait: number;
  client: Client;
  dbDir: string;
  sequentialMs: number[];
  waveMs: number[];
  waveCallMs: number[];
  wavePairs: number;
  waveBatches: number;
}

async function startServer(wait: number): Promise<Server> {
  const dbDir = mkdtempSync(join(tmpdir(), 'rerank-wait-'));
  const args = [CLI, '--model', MODEL, '--variant', opts.variant!, '--threads', opts.threads!, '--batch-wait-ms', String(wait), '--cache-size', '0'];
  const transport = new StdioClientTransport({ command: process.execPath, args, env: { ...(process.env as Record<string, string>), RERANK_FEEDBACK_DB: join(dbDir, 'feedback.db'), RERANK_STANDALONE: '1' }, stderr: 'ignore' });
  const client = new Client({ name: 'rerank-batch-wait', version: '0.0.0' });
  await client.connect(transport);
  return { wait, client, dbDir, sequentialMs: [], waveMs: [], waveCallMs: [], wavePairs: 0, waveBatches: 0 };
}

async function rerank(server: Server, call: Call): Promise<number> {
  const start = performance.now();
  const result = await server.client.callTool({ name: 'rerank', arguments: { query: call.query, documents: call.documents, return_documents: false } });
  if (result.isError) throw new Error(`rerank failed on the server with --batch-wait-ms ${server.wait}: ${JSON.stringify(result.content)}`);
  return performance.now() - start;
}

async function counters(server: Server): Promise<{ batches: number; pairs: number }> {
  const info = (await server.client.callTool({ name: 'model_info', arguments: {} })).structuredContent as { batches_run: number; pairs_scored: number };
  return { batches: info.batches_run, pairs: info.pairs_scored };
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

const servers: Server[] = [];
for (const wait of WAITS) servers.push(await startServer(wait));
// model_info waits for the background load; one call each warms the session up.
const warmup = callFor(triplets, triplets.length - 1);
for (const server of servers) await rerank(server, { ...warmup, query: `${warmup.query} (warm-up)` });

for (let round = 0; round < ROUNDS; round++) {
  const calls = Array.from({ length: CALLS_PER_ROUND }, (_, k) => callFor(triplets, round * CALLS_PER_ROUND + k));
  const sequential = calls.slice(0, SEQUENTIAL_CALLS);
  const wave = calls.slice(SEQUENTIAL_CALLS);
  for (let k = 0; k < servers.length; k++) {
    const server = servers[(round + k) % servers.length];
    for (const call of sequential) server.sequentialMs.push(await rerank(server, call));
    const before = await counters(server);
    const start = performance.now();
    server.waveCallMs.push(...(await Promise.all(wave.map((call) => rerank(server, call)))));
    server.waveMs.push(performance.now() - start);
    const after = await counters(server);
    server.waveBatches += after.batches - before.batches;
    server.wavePairs += after.pairs - before.pairs;
  }
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}

console.log(`${opts.variant} · ${opts.threads} threads · ${ROUNDS} rounds · ${SEQUENTIAL_CALLS} sequential calls and a wave of ${WAVE_CALLS} concurrent calls per round · 20 documents per call`);
console.log('wait ms | sequential call ms (mean) | wave pairs/s | wave call ms (mean / max) | pairs per batch in waves');
for (const server of servers) {
  const wavePairsPerSecond = server.wavePairs / (server.waveMs.reduce((a, b) => a + b, 0) / 1000);
  console.log(
    [
      String(server.wait).padStart(7),
      mean(server.sequentialMs).toFixed(0).padStart(25),
      wavePairsPerSecond.toFixed(1).padStart(12),
      `${mean(server.waveCallMs).toFixed(0)} / ${Math.max(...server.waveCallMs).toFixed(0)}`.padStart(25),
      (server.wavePairs / server.waveBatches).toFixed(1).padStart(24),
    ].join(' | '),
  );
}
for (const server of servers) {
  await server.client.close();
  rmSync(server.dbDir, { recursive: true, force: true });
}
