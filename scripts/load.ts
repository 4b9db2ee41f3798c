/**
 * `npm run load`: a bounded soak of the built server. One HTTP server process with 8 MCP
 * sessions (SDK Clients) plus 2 stdio clients (each its own server process) make mixed calls
 * for 60 s; every call must succeed (a deliberately bad call must come back as isError), and
 * each server's resident memory must stay flat. See docs/load.md.
 *
 *   npm run load -- [--seconds 60] [--warmup-seconds 10] [--max-calls 100000] [--model DIR]
 *                   [--http-sessions 8] [--stdio-clients 2] [--seed 1] [--out FILE]
 *                   [--scenario all|mixed|large-call] [--large-docs 300] [--large-chars 30000]
 *                   [--large-baseline-seconds 10]
 *
 * Then (unless --scenario mixed; --scenario large-call runs only this) the large-call
 * scenario on the HTTP server: one session sends a rerank of --large-docs documents of
 * --large-chars characters with long_documents "chunk" while the other sessions make small
 * scoring calls; it reports their p50/p99 against the same calls alone just before, and the
 * large call's duration. The HTTP server runs with RERANK_MAX_CALL_TOKENS=0 so the large call
 * is not refused.
 *
 * The same mixed load runs for --warmup-seconds first (not measured) so that ONNX Runtime's
 * memory arena has seen the batch shapes concurrent calls make before RSS is first sampled.
 * --max-calls caps warm-up and measured calls together.
 *
 * Loopback only: the HTTP server binds 127.0.0.1 on a free port. Feedback goes to one temp
 * SQLite file shared by all three servers (as the per-user default DB would be), never the
 * user's. Exit 1 on any error or if RSS grew past max(+25 %, +50 MB) of its post-warm-up value.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { FIXTURES } from '../test/helpers/fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const DEFAULT_MODEL = join(FIXTURES, 'models', 'tiny-ce');
const PARITY = join(FIXTURES, 'parity', 'tiny-ce.json');

/** RSS may grow by the larger of these between the post-warm-up sample and the end. */
const RSS_GROWTH_FRACTION = 0.25;
const RSS_GROWTH_BYTES = 50 * 1024 * 1024;
/** Extra time allowed past --seconds for in-flight calls to finish before giving up. */
const DRAIN_GRACE_MS = 60_000;
const CALL_TIMEOUT_MS = 60_000;

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'warmup-seconds': { type: 'string', default: '10' },
    'max-calls': { type: 'string', default: '100000' },
    model: { type: 'string', default: DEFAULT_MODEL },
    'http-sessions': { type: 'string', default: '8' },
    'stdio-clients': { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
    scenario: { type: 'string', default: 'all' },
    'large-docs': { type: 'string', default: '300' },
    'large-chars': { type: 'string', default: '30000' },
    'large-baseline-seconds': { type: 'string', default: '10' },
    replicas: { type: 'string', default: '3' },
    'replica-clients': { type: 'string', default: '6' },
    'replica-seconds': { type: 'string', default: '20' },
    'replica-threads': { type: 'string' },
    'replica-rounds': { type: 'string', default: '5' },
  },
  strict: true,
});

const positiveInt = (name: string, raw: string, min = 1): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, got ${raw}`);
  return n;
};
const SECONDS = positiveInt('seconds', opts.seconds!);
const WARMUP_SECONDS = positiveInt('warmup-seconds', opts['warmup-seconds']!, 0);
const MAX_CALLS = positiveInt('max-calls', opts['max-calls']!);
const HTTP_SESSIONS = positiveInt('http-sessions', opts['http-sessions']!, 0);
const STDIO_CLIENTS = positiveInt('stdio-clients', opts['stdio-clients']!, 0);
const MODEL = resolve(opts.model!);
const SCENARIOS = ['all', 'mixed', 'large-call', 'replicas'] as const;
const SCENARIO = opts.scenario as (typeof SCENARIOS)[number];
if (!SCENARIOS.includes(SCENARIO)) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')}, got ${opts.scenario}`);
const LARGE_DOCS = positiveInt('large-docs', opts['large-docs']!);
const LARGE_CHARS = positiveInt('large-chars', opts['large-chars']!);
const LARGE_BASELINE_SECONDS = positiveInt('large-baseline-seconds', opts['large-baseline-seconds']!);
if (SCENARIO !== 'mixed' && SCENARIO !== 'replicas' && HTTP_SESSIONS < 2) throw new Error('the large-call scenario needs --http-sessions 2 or more');

// ---------------------------------------------------------------------------- workload

interface Parity {
  pairs: [string, string][];
}
const parity = JSON.parse(readFileSync(PARITY, 'utf8')) as Parity;
const QUERIES = [...new Set(parity.pairs.map(([q]) => q))];
const DOCS = [...new Set(parity.pairs.map(([, d]) => d))];

/** mulberry32: a seeded PRNG, so a run's call mix can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'rerank_20' | 'score_pair_1' | 'score_pair_10' | 'feedback' | 'model_info' | 'bad_call';
const KINDS: readonly Kind[] = ['rerank_20', 'score_pair_1', 'score_pair_10', 'feedback', 'model_info', 'bad_call'];
/** Relative frequency of each kind of call. */
const MIX: Record<Kind, number> = { rerank_20: 40, score_pair_1: 15, score_pair_10: 15, feedback: 12, model_info: 8, bad_call: 5 };
const MIX_TOTAL = Object.values(MIX).reduce((a, b) => a + b, 0);

interface Planned {
  kind: Kind;
  tool: string;
  args: Record<string, unknown>;
  /** A bad call must be answered with isError (an unknown tool: with the JSON-RPC error -32602), and nothing else. */
  expectError: boolean;
}

interface ClientState {
  name: string;
  transport: 'http' | 'stdio';
  client: Client;
  rand: () => number;
  /** The last rerank this client saw, so feedback can label it by rerank_id like an agent would. */
  lastRerank?: { rerank_id: string; indexes: number[] };
}

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)];
const sample = <T>(rand: () => number, list: readonly T[], n: number): T[] => Array.from({ length: n }, () => pick(rand, list));

const BAD_CALLS: ((r: () => number) => Omit<Planned, 'kind' | 'expectError'>)[] = [
  () => ({ tool: 'rerank', args: { query: 'q', documents: [] } }),
  () => ({ tool: 'score_pair', args: { query: 'only a query' } }),
  () => ({ tool: 'feedback', args: { query: 'q', document: 'd', label: 7 } }),
  () => ({ tool: 'rerank', args: { query: 'q', documents: ['a'], top_k: 0 } }),
  () => ({ tool: 'feedback', args: { rerank_id: 'no-such-rerank', relevant: [0] } }),
  () => ({ tool: 'no_such_tool', args: {} }),
];

function plan(state: ClientState): Planned {
  const r = state.rand;
  let x = r() * MIX_TOTAL;
  let kind: Kind = 'rerank_20';
  for (const k of KINDS) {
    if ((x -= MIX[k]) < 0) {
      kind = k;
      break;
    }
  }
  switch (kind) {
    case 'rerank_20':
      return { kind, tool: 'rerank', args: { query: pick(r, QUERIES), documents: sample(r, DOCS, 20), top_k: 10, return_documents: r() < 0.5 }, expectError: false };
    case 'score_pair_1':
      return { kind, tool: 'score_pair', args: { query: pick(r, QUERIES), document: pick(r, DOCS) }, expectError: false };
    case 'score_pair_10':
      return { kind, tool: 'score_pair', args: { pairs: Array.from({ length: 10 }, () => ({ query: pick(r, QUERIES), document: pick(r, DOCS) })) }, expectError: false };
    case 'feedback':
      if (state.lastRerank && r() < 0.5) {
        const { rerank_id, indexes } = state.lastRerank;
        state.lastRerank = undefined; // label a rerank once
        return { kind, tool: 'feedback', args: { rerank_id, relevant: [indexes[0]], irrelevant: indexes.slice(1, 3), session_id: state.name }, expectError: false };
      }
      return { kind, tool: 'feedback', args: { query: pick(r, QUERIES), document: pick(r, DOCS), label: r() < 0.5 ? 1 : 0, source: 'load', session_id: state.name }, expectError: false };
    case 'model_info':
      return { kind, tool: 'model_info', args: {}, expectError: false };
    case 'bad_call':
      return { kind, ...pick(r, BAD_CALLS)(r), expectError: true };
  }
}

/** The scoring calls of the mix, each made unique (so never a cache hit: every one goes through the batch queue). */
const SMALL_KINDS: readonly Kind[] = ['rerank_20', 'score_pair_1', 'score_pair_10'];
let uniqueCalls = 0;
function planSmall(state: ClientState): Planned {
  let p = plan(state);
  while (!SMALL_KINDS.includes(p.kind)) p = plan(state);
  const tag = ` (${++uniqueCalls})`;
  const args = { ...p.args } as { query?: string; pairs?: { query: string; document: string }[] };
  if (args.query !== undefined) args.query += tag;
  if (args.pairs) args.pairs = args.pairs.map((x) => ({ ...x, query: x.query + tag }));
  return { ...p, args };
}

/** `count` documents of `chars` characters: parity passages, picked at random, end to end. */
function longDocuments(rand: () => number, count: number, chars: number): string[] {
  return Array.from({ length: count }, () => {
    const parts: string[] = [];
    for (let n = 0; n < chars; n += parts.at(-1)!.length + 1) parts.push(pick(rand, DOCS));
    return parts.join(' ').slice(0, chars);
  });
}

// ---------------------------------------------------------------------------- servers

interface ServerProc {
  name: string;
  pid: number;
}

function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function startHttpServer(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, '--http', '--host', '127.0.0.1', '--port', '0', '--model', MODEL], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) {
        done = true;
        child.kill('SIGKILL');
        reject(new Error(`HTTP server did not start in 60 s: ${stderr}`));
      }
    }, 60_000);
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /serving MCP over Streamable HTTP at (http:\/\/\S+\/mcp)/.exec(stderr);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolvePromise({ child, url: m[1], stderr: () => stderr });
      }
    });
    child.on('exit', (code) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`HTTP server exited with ${code} before listening: ${stderr}`));
      }
    });
  });
}

async function healthz(url: string): Promise<{ status: string; sessions: number }> {
  const res = await fetch(new URL('/healthz', url));
  return (await res.json()) as { status: string; sessions: number };
}

// ---------------------------------------------------------------------------- stats

interface Sample {
  kind: Kind;
  transport: 'http' | 'stdio';
  ms: number;
  ok: boolean;
}

interface ToolResult {
  isError?: boolean;
  structuredContent?: { rerank_id?: string; results?: { index: number }[] };
  content?: { text?: string }[];
}

/**
 * One call as a client makes it, timed into `samples`. A call not answered as planned (an
 * error where none was expected, or the other way round) goes into `errors`; its result is
 * returned only when it was answered as planned.
 */
async function timedCall(c: ClientState, p: Planned, samples: Sample[], errors: string[], during = ''): Promise<ToolResult | undefined> {
  const t = performance.now();
  let res: ToolResult | undefined;
  let detail = '';
  try {
    res = (await c.client.callTool({ name: p.tool, arguments: p.args }, undefined, { timeout: CALL_TIMEOUT_MS })) as ToolResult;
    if ((res.isError === true) !== p.expectError) detail = `isError=${res.isError === true}: ${(res.content ?? []).map((x) => x.text ?? '').join(' ').slice(0, 200)}`;
  } catch (e) {
    // An unknown tool is a protocol error (-32602), not an isError result: that is its planned answer.
    const planned = p.expectError && (e as { code?: number }).code === -32602 && /Unknown tool/.test((e as Error).message);
    if (!planned) detail = `threw: ${(e as Error).message}`;
  }
  const ok = detail === '';
  samples.push({ kind: p.kind, transport: c.transport, ms: performance.now() - t, ok });
  if (!ok) errors.push(`${c.name} ${p.kind} (${p.tool})${during}: ${detail}`);
  return ok ? res : undefined;
}

const percentile = (sorted: number[], p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]);
const r1 = (n: number): number => Math.round(n * 10) / 10;
const mb = (bytes: number | null): number | null => (bytes === null ? null : Math.round((bytes / 1048576) * 10) / 10);

function latencyRow(label: string, samples: Sample[]) {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  return {
    label,
    calls: samples.length,
    errors: samples.filter((s) => !s.ok).length,
    p50_ms: r1(percentile(ms, 50)),
    p99_ms: r1(percentile(ms, 99)),
    max_ms: r1(ms.at(-1) ?? NaN),
  };
}

function table(header: string[], rows: (string | number | null)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '-' : String(c))))];
  const width = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join(' | ')} |`;
  return [line(cells[0]), `|${width.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------------------- run

async function main(): Promise<number> {
  const startedAt = new Date();
  const work = mkdtempSync(join(tmpdir(), 'rerank-load-'));
  const dbPath = join(work, 'feedback.db');
  // Each stdio server in process (--standalone): this script measures one server per client.
  const serverEnv: NodeJS.ProcessEnv = { ...process.env, RERANK_FEEDBACK_DB: dbPath, RERANK_MAX_CALL_TOKENS: '0', RERANK_STANDALONE: '1' };
  const root = prng(Number(opts.seed));
  const servers: ServerProc[] = [];
  const clients: ClientState[] = [];
  const errors: string[] = [];
  let httpChild: ChildProcess | undefined;
  const stdioTransports: StdioClientTransport[] = [];
  const httpTransports: StreamableHTTPClientTransport[] = [];

  const cleanup = async () => {
    await Promise.allSettled(clients.map((c) => c.client.close()));
    if (httpChild && httpChild.exitCode === null) {
      const exited = new Promise((r) => httpChild!.once('exit', r));
      httpChild.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (httpChild.exitCode === null && httpChild.signalCode === null) httpChild.kill('SIGKILL');
    }
    for (const t of stdioTransports) if (t.pid !== null && rssBytes(t.pid) !== null) process.kill(t.pid, 'SIGKILL');
    rmSync(work, { recursive: true, force: true });
  };

  try {
    console.error(`load: model ${relative(process.cwd(), MODEL) || MODEL}, ${SECONDS} s, at most ${MAX_CALLS} calls, ${HTTP_SESSIONS} HTTP sessions + ${STDIO_CLIENTS} stdio clients, nproc ${availableParallelism()}`);
    let httpUrl: string | undefined;
    if (HTTP_SESSIONS > 0) {
      const http = await startHttpServer(serverEnv);
      httpChild = http.child;
      httpUrl = http.url;
      const host = new URL(http.url).hostname;
      if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') throw new Error(`HTTP server is not on loopback: ${http.url}`);
      servers.push({ name: 'http', pid: http.child.pid! });
      for (let i = 0; i < HTTP_SESSIONS; i++) {
        const client = new Client({ name: `load-http-${i}`, version: '0.0.0' });
        const transport = new StreamableHTTPClientTransport(new URL(http.url));
        await client.connect(transport);
        httpTransports.push(transport);
        clients.push({ name: `http-${i}`, transport: 'http', client, rand: prng(Math.floor(root() * 2 ** 32)) });
      }
    }
    const mixed = SCENARIO !== 'large-call';
    for (let i = 0; i < (mixed ? STDIO_CLIENTS : 0); i++) {
      const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, '--model', MODEL], env: serverEnv as Record<string, string>, stderr: 'pipe' });
      let stderr = '';
      transport.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
      const client = new Client({ name: `load-stdio-${i}`, version: '0.0.0' });
      await client.connect(transport).catch((e: Error) => {
        throw new Error(`stdio server ${i} failed to start: ${e.message}\n${stderr}`);
      });
      stdioTransports.push(transport);
      servers.push({ name: `stdio-${i}`, pid: transport.pid! });
      clients.push({ name: `stdio-${i}`, transport: 'stdio', client, rand: prng(Math.floor(root() * 2 ** 32)) });
    }

    let started = 0;
    /** Each client makes one call at a time, as an agent session does, until the deadline. */
    const loop = async (c: ClientState, deadline: number, samples: Sample[]) => {
      while (performance.now() < deadline && started < MAX_CALLS) {
        started++;
        const p = plan(c);
        const res = await timedCall(c, p, samples, errors);
        if (p.kind === 'rerank_20' && res?.structuredContent?.rerank_id) {
          c.lastRerank = { rerank_id: res.structuredContent.rerank_id, indexes: (res.structuredContent.results ?? []).map((x) => x.index) };
        }
      }
    };
    /** Runs the load until `seconds` pass; false if calls were still in flight a grace period later. */
    const phase = async (seconds: number, samples: Sample[]): Promise<boolean> => {
      const deadline = performance.now() + seconds * 1000;
      const all = Promise.all(clients.map((c) => loop(c, deadline, samples)));
      const timer = sleep(seconds * 1000 + DRAIN_GRACE_MS, 'stuck' as const, { ref: false });
      return (await Promise.race([all.then(() => 'done' as const), timer])) === 'done';
    };

    // Warm-up: the same mixed load, not measured (its errors still count).
    const warmup: Sample[] = [];
    if (!(await phase(mixed ? WARMUP_SECONDS : 0, warmup))) throw new Error(`warm-up calls still in flight ${DRAIN_GRACE_MS / 1000} s after its end`);
    const rssStart = Object.fromEntries(servers.map((s) => [s.name, rssBytes(s.pid)]));
    const rssMax: Record<string, number> = Object.fromEntries(servers.map((s) => [s.name, rssStart[s.name] ?? 0]));
    const sessionsDuring = httpUrl ? (await healthz(httpUrl)).sessions : null;

    const samples: Sample[] = [];
    /** RSS every 5 s, so a slow climb can be told from a step that levels off. */
    const rssTimeline: { t_s: number; mb: Record<string, number | null> }[] = [{ t_s: 0, mb: Object.fromEntries(servers.map((s) => [s.name, mb(rssStart[s.name])])) }];
    let ticks = 0;
    const rssTimer = setInterval(() => {
      const now = Object.fromEntries(servers.map((s) => [s.name, rssBytes(s.pid)]));
      for (const s of servers) rssMax[s.name] = Math.max(rssMax[s.name], now[s.name] ?? 0);
      if (++ticks % 5 === 0) rssTimeline.push({ t_s: ticks, mb: Object.fromEntries(servers.map((s) => [s.name, mb(now[s.name])])) });
    }, 1000);
    const t0 = performance.now();
    const stuck = !(await phase(mixed ? SECONDS : 0, samples));
    clearInterval(rssTimer);
    const elapsedS = (performance.now() - t0) / 1000;
    if (stuck) errors.push(`calls still in flight ${DRAIN_GRACE_MS / 1000} s after the deadline`);

    const rssEnd = Object.fromEntries(servers.map((s) => [s.name, rssBytes(s.pid)]));
    for (const s of servers) rssMax[s.name] = Math.max(rssMax[s.name], rssEnd[s.name] ?? 0);
    const alive = Object.fromEntries(servers.map((s) => [s.name, rssEnd[s.name] !== null]));
    type Info = { batches_run: number; pairs_scored: number; cache: { hits: number; misses: number; entries: number } };
    const info = await Promise.all(
      servers.map(async (s) => {
        const c = clients.find((x) => (s.name === 'http' ? x.transport === 'http' : x.name === s.name))!;
        try {
          return (await c.client.callTool({ name: 'model_info', arguments: {} }, undefined, { timeout: CALL_TIMEOUT_MS })).structuredContent as Info;
        } catch (e) {
          errors.push(`${s.name}: model_info after the run failed: ${(e as Error).message}`);
          return null;
        }
      }),
    );
    // After the RSS samples: the large call's windows grow the ONNX Runtime arena for good.
    const largeCall = SCENARIO === 'mixed' ? null : await largeCallScenario(clients.filter((c) => c.transport === 'http'), root, errors);

    // Close the HTTP sessions the way a client should, then check the server dropped them all.
    await Promise.allSettled(httpTransports.map((t) => t.terminateSession()));
    const sessionsAfter = httpUrl ? (await healthz(httpUrl)).sessions : null;
    if (sessionsAfter !== null && sessionsAfter !== 0) errors.push(`HTTP server still holds ${sessionsAfter} sessions after all were terminated`);

    // ------------------------------------------------------------------ report
    const byKind = KINDS.map((k) => latencyRow(k, samples.filter((s) => s.kind === k)));
    const byTransport = (['http', 'stdio'] as const).map((t) => latencyRow(`all ${t}`, samples.filter((s) => s.transport === t))).filter((r) => r.calls > 0);
    const overall = latencyRow('all', samples);
    const byKindAndTransport = (['http', 'stdio'] as const).flatMap((t) => KINDS.map((k) => latencyRow(`${k} ${t}`, samples.filter((x) => x.kind === k && x.transport === t)))).filter((r) => r.calls > 0);
    const rss = servers.map((s) => {
      const start = rssStart[s.name];
      const end = rssEnd[s.name];
      const allowed = start === null ? null : Math.max(start * RSS_GROWTH_FRACTION, RSS_GROWTH_BYTES);
      const flat = start !== null && end !== null && allowed !== null && end - start <= allowed;
      return { server: s.name, pid: s.pid, start_mb: mb(start), max_mb: mb(rssMax[s.name]), end_mb: mb(end), growth_mb: start !== null && end !== null ? mb(end - start) : null, allowed_mb: mb(allowed), flat, alive: alive[s.name] };
    });
    for (const r of rss) if (!r.alive) errors.push(`server ${r.server} (pid ${r.pid}) died during the run`);
    const rssFlat = rss.every((r) => r.flat);

    const result = {
      date: startedAt.toISOString(),
      host: { nproc: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', mem_gb: Math.round(totalmem() / 2 ** 30), loadavg_1m_at_start: loadavg()[0], node: process.version },
      settings: { model: MODEL, seconds: SECONDS, warmup_seconds: WARMUP_SECONDS, warmup_calls: warmup.length, max_calls: MAX_CALLS, http_sessions: HTTP_SESSIONS, stdio_clients: STDIO_CLIENTS, seed: Number(opts.seed), scenario: SCENARIO, large_call: SCENARIO === 'mixed' ? null : { docs: LARGE_DOCS, chars: LARGE_CHARS, baseline_seconds: LARGE_BASELINE_SECONDS }, mix: MIX, rss_rule: `end - start <= max(${RSS_GROWTH_FRACTION * 100} %, ${RSS_GROWTH_BYTES / 2 ** 20} MB)` },
      elapsed_s: r1(elapsedS),
      calls: samples.length,
      calls_per_s: r1(samples.length / elapsedS),
      errors: errors.length,
      error_samples: errors.slice(0, 20),
      latency: { by_kind: byKind, by_transport: byTransport, overall, by_kind_and_transport: byKindAndTransport },
      rss,
      rss_flat: rssFlat,
      rss_timeline: rssTimeline,
      http_sessions: { during: sessionsDuring, after_terminate: sessionsAfter },
      large_call: largeCall,
      servers_model_info: Object.fromEntries(servers.map((s, i) => [s.name, info[i] && { batches_run: info[i].batches_run, pairs_scored: info[i].pairs_scored, cache: info[i].cache }])),
    };

    console.log(`\nrerank-mcp load: ${result.date}, nproc ${result.host.nproc} (${result.host.cpu}), Node ${process.version}, load avg at start ${result.host.loadavg_1m_at_start.toFixed(2)}`);
    if (mixed) console.log(`${samples.length} calls in ${r1(elapsedS)} s (${result.calls_per_s}/s) from ${HTTP_SESSIONS} HTTP sessions + ${STDIO_CLIENTS} stdio clients, model ${relative(ROOT, MODEL)}\n`);
    if (mixed) {
      console.log(table(['calls', 'n', 'errors', 'p50 ms', 'p99 ms', 'max ms'], [...byKind, ...byTransport, overall].map((r) => [r.label, r.calls, r.errors, r.p50_ms, r.p99_ms, r.max_ms])));
      console.log('');
    }
    if (largeCall) {
      const l = largeCall;
      console.log(`Large call: rerank of ${LARGE_DOCS} documents x ${LARGE_CHARS} characters, long_documents "chunk", on session http-0: ${l.large.ok ? 'ok' : 'FAILED'} in ${l.large.seconds} s (${l.large.windows} windows)`);
      console.log(`Small calls from ${l.small_sessions} other HTTP sessions (rerank_20, score_pair_1, score_pair_10, never cached), alone for ${LARGE_BASELINE_SECONDS} s, then while the large call ran:\n`);
      console.log(table(['small calls', 'n', 'errors', 'p50 ms', 'p99 ms', 'max ms'], [l.alone, l.during].map((r) => [r.label, r.calls, r.errors, r.p50_ms, r.p99_ms, r.max_ms])));
      console.log(`\nduring / alone: p50 ${l.ratio_p50}x, p99 ${l.ratio_p99}x\n`);
    }
    console.log(table(['server RSS', 'start MB', 'max MB', 'end MB', 'growth MB', 'allowed MB', 'flat'], rss.map((r) => [r.server, r.start_mb, r.max_mb, r.end_mb, r.growth_mb, r.allowed_mb, r.flat ? 'yes' : 'NO'])));
    console.log(`\nHTTP sessions: ${sessionsDuring ?? '-'} during the run, ${sessionsAfter ?? '-'} after terminating them`);
    console.log(`errors: ${errors.length}${errors.length ? `\n  ${errors.slice(0, 10).join('\n  ')}` : ''}`);
    console.log(`RSS flat (${result.settings.rss_rule}): ${rssFlat ? 'yes' : 'NO'}`);

    const out = opts.out ? resolve(opts.out) : join(ROOT, 'bench-results', `load-${result.date.replace(/[:.]/g, '-')}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${relative(process.cwd(), out)}`);
    return errors.length === 0 && rssFlat ? 0 : 1;
  } finally {
    await cleanup();
  }
}

/**
 * One HTTP session sends one large chunked rerank while the other sessions make small
 * scoring calls one at a time; the same small calls first run alone for a baseline. Reports
 * the small calls' latency both ways and the large call's duration.
 */
async function largeCallScenario(http: ClientState[], root: () => number, errors: string[]) {
  const [big, ...small] = http;
  const smallLoop = async (until: () => boolean, samples: Sample[]) => {
    await Promise.all(
      small.map(async (c) => {
        while (!until()) await timedCall(c, planSmall(c), samples, errors, ' during the large-call scenario');
      }),
    );
  };
  const alone: Sample[] = [];
  const baselineEnd = performance.now() + LARGE_BASELINE_SECONDS * 1000;
  await smallLoop(() => performance.now() >= baselineEnd, alone);

  const rand = prng(Math.floor(root() * 2 ** 32));
  const documents = longDocuments(rand, LARGE_DOCS, LARGE_CHARS);
  let done = false;
  const t = performance.now();
  const large = big.client
    .callTool({ name: 'rerank', arguments: { query: `${pick(rand, QUERIES)} (large)`, documents, long_documents: 'chunk', return_documents: false } }, undefined, { timeout: 3_600_000 })
    .then(
      (res) => {
        const results = (res.structuredContent as { results?: { windows: number }[] } | undefined)?.results ?? [];
        if (res.isError) errors.push(`the large call was answered with isError: ${JSON.stringify(res.content).slice(0, 300)}`);
        return { ok: res.isError !== true, windows: results.reduce((n, r) => n + r.windows, 0) };
      },
      (e: Error) => {
        errors.push(`the large call threw: ${e.message}`);
        return { ok: false, windows: 0 };
      },
    )
    .finally(() => (done = true));
  const during: Sample[] = [];
  // Small calls start once the large one is being scored, not while its request is still being sent.
  await sleep(200);
  await smallLoop(() => done, during);
  const { ok, windows } = await large;
  const seconds = r1((performance.now() - t) / 1000);
  const aloneRow = latencyRow('alone', alone);
  const duringRow = latencyRow('during the large call', during);
  return {
    large: { docs: LARGE_DOCS, chars: LARGE_CHARS, ok, seconds, windows },
    small_sessions: small.length,
    alone: aloneRow,
    during: duringRow,
    ratio_p50: r1(duringRow.p50_ms / aloneRow.p50_ms),
    ratio_p99: r1(duringRow.p99_ms / aloneRow.p99_ms),
  };
}

/** --scenario replicas: 1 vs N stateless replicas behind haproxy (scripts/load-replicas.ts). */
async function replicasMain(): Promise<number> {
  const { runReplicasScenario } = await import('./load-replicas.js');
  const date = new Date().toISOString();
  const result = await runReplicasScenario({
    model: MODEL,
    parityFile: PARITY,
    replicas: positiveInt('replicas', opts.replicas!, 2),
    clients: positiveInt('replica-clients', opts['replica-clients']!),
    seconds: positiveInt('replica-seconds', opts['replica-seconds']!),
    warmupSeconds: Math.min(WARMUP_SECONDS, 5),
    threads: opts['replica-threads'] === undefined ? undefined : positiveInt('replica-threads', opts['replica-threads']),
    seed: Number(opts.seed),
    rounds: positiveInt('replica-rounds', opts['replica-rounds']!),
  });
  console.log(`\nrerank-mcp load, replicas scenario: ${date}\n${result.text}`);
  const out = opts.out ? resolve(opts.out) : join(ROOT, 'bench-results', `load-replicas-${date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date, model: MODEL, nproc: availableParallelism(), ...result }, null, 2)}\n`);
  console.log(`wrote ${relative(process.cwd(), out)}`);
  return result.rows.every((r) => r.errors === 0) ? 0 : 1;
}

(SCENARIO === 'replicas' ? replicasMain() : main()).then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`load failed: ${e.stack ?? e.message}`);
    process.exit(1);
  },
);
