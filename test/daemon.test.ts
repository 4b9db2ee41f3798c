/**
 * The default stdio launch: thin shims relaying to one shared daemon per configuration. Driven by
 * the SDK's stdio Client against the built CLI, each test in a daemon directory of its own.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import Database from 'better-sqlite3';
import { CLI, REPO_ROOT, TINY_CE, stopDaemons } from './helpers/fixtures.js';
import { freshDbPath } from './helpers/mcp.js';
import { runCli } from './helpers/run-cli.js';
import { call } from './helpers/tool-checks.js';
import { DEFAULT_ENGINE_OPTIONS } from '../src/engine/scoring-engine.js';
import { ENGINE_OPTION_DEFAULTS } from '../src/defaults.js';
import { OPTIONS, parseConfig } from '../src/config.js';
import { DAEMON_ENV, PER_CLIENT_ENV, PER_CLIENT_OPTIONS, daemonKey, processAlive } from '../src/transports/daemon-common.js';
import { postgresSkip, startPostgres } from './helpers/postgres.js';
import pg from 'pg';

const XLMR_TINY = join(REPO_ROOT, 'test', 'fixtures', 'xlmr-tiny');
const QWEN3_TINY = join(REPO_ROOT, 'test', 'fixtures', 'qwen3-tiny');
const dirs: string[] = [];
const clients: Shim[] = [];

/** A daemon directory of this test's own (mode 0700, as the daemon wants it). */
function daemonDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rd-'));
  dirs.push(dir);
  return dir;
}

after(async () => {
  await Promise.all(clients.map((c) => c.client.close().catch(() => undefined)));
  for (const dir of dirs) stopDaemons(dir);
});

interface Shim {
  client: Client;
  transport: StdioClientTransport;
  closed: () => boolean;
  stderr: () => string;
}

async function shim(name: string, dir: string, args: string[], env: Record<string, string> = {}): Promise<Shim> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, ...args],
    env: { ...(process.env as Record<string, string>), RERANK_DAEMON_DIR: dir, ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name, version: '1.0.0' });
  let closed = false;
  await client.connect(transport);
  client.onclose = () => (closed = true);
  const s = { client, transport, closed: () => closed, stderr: () => stderr };
  clients.push(s);
  return s;
}

interface DaemonEntry {
  pid: number;
  key: string;
  version: string;
  clients: number;
  models: string[];
  uptime_s: number;
  socket: string;
  current: boolean;
}

interface Status {
  running: boolean;
  dir: string;
  daemons: DaemonEntry[];
  not_answering: { pid: number; key: string; socket: string }[];
}

const clientsOf = (st: Status) => st.daemons.reduce((n, d) => n + d.clients, 0);

async function status(dir: string): Promise<Status> {
  const res = await runCli(['daemon', 'status'], { env: { RERANK_DAEMON_DIR: dir } });
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.trim().split('\n');
  assert.equal(lines.length, 1, 'daemon status prints one line');
  return JSON.parse(lines[0]) as Status;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const scorePair = async (c: Client) => (await call(c, 'score_pair', { query: 'where is bm25?', document: 'def bm25(): ...' })).structuredContent as { results: { logit: number }[] };
const modelOf = async (c: Client) => ((await call(c, 'model_info', {})).structuredContent as { model: string }).model;
const shimLines = (stderr: string, pattern: RegExp) => stderr.split('\n').filter((l) => pattern.test(l));

test('the option defaults the shim parses with equal the engine defaults', () => {
  assert.deepEqual({ ...ENGINE_OPTION_DEFAULTS }, { ...DEFAULT_ENGINE_OPTIONS });
});

test('four stdio clients share one daemon; feedback is attributed to each client; another model gets its own daemon; SIGKILL is survived', async () => {
  const dir = daemonDir();
  const db = freshDbPath();
  const env = { RERANK_FEEDBACK_DB: db };
  const names = ['claude-desktop', 'cursor', 'vscode', 'claude-code'];
  const four = await Promise.all(names.map((n) => shim(n, dir, ['--model', TINY_CE, '--max-batch-tokens', '512'], env)));
  const reference = await scorePair(four[0].client);
  for (const s of four) assert.deepEqual(await scorePair(s.client), reference);

  const st = await status(dir);
  assert.equal(st.running, true);
  assert.equal(st.daemons.length, 1, JSON.stringify(st));
  assert.equal(st.daemons[0].clients, 4);
  assert.equal(st.daemons[0].current, true);
  const pids = four.map((s) => s.transport.pid);
  assert.ok(!pids.includes(st.daemons[0].pid), 'the daemon is a process of its own');

  // Feedback from each client carries that client's name, through one database connection.
  for (const [i, s] of four.entries()) {
    const res = await call(s.client, 'feedback', { query: `q${i}`, document: `d${i}`, label: 1 });
    assert.notEqual(res.isError, true);
  }
  const d = new Database(db, { readonly: true });
  const rows = d.prepare('SELECT query, source FROM feedback_events ORDER BY query').all() as { query: string; source: string }[];
  d.close();
  assert.deepEqual(rows, names.map((source, i) => ({ query: `q${i}`, source })));

  // Another model is another configuration: its own daemon, never the tiny-ce one.
  const other = await shim('zed', dir, ['--model', XLMR_TINY], env);
  assert.match(await modelOf(other.client), /xlmr-tiny/);
  assert.match(await modelOf(four[0].client), /tiny-ce/);
  // Each daemon is listed with its own fields: pid, clients, models and uptime never mixed.
  const both = await status(dir);
  assert.deepEqual(Object.keys(both).sort(), ['daemons', 'dir', 'not_answering', 'running']);
  assert.equal(both.daemons.length, 2);
  const byModel = (re: RegExp) => both.daemons.find((x) => x.models.length === 1 && re.test(x.models[0]))!;
  assert.equal(byModel(/tiny-ce/).pid, st.daemons[0].pid);
  assert.equal(byModel(/tiny-ce/).clients, 4);
  assert.equal(byModel(/xlmr-tiny/).clients, 1);
  assert.notEqual(byModel(/xlmr-tiny/).pid, st.daemons[0].pid);
  assert.ok(byModel(/tiny-ce/).uptime_s >= byModel(/xlmr-tiny/).uptime_s, JSON.stringify(both));

  // SIGKILL the tiny-ce daemon while a long call runs: that call gets an error, not silence; every
  // client's next calls succeed on a new daemon, and no client transport closes.
  const victim = st.daemons[0].pid;
  // 1000 documents (the most a call may send) of ~80 tokens: about 160 batches of 512 tokens.
  const documents = Array.from({ length: 1000 }, (_, i) => `${i}: a document about ranking and search number ${i}. `.repeat(6));
  // Killed at its first progress notification, so the call is surely in flight (on an idle machine it
  // can finish within a fixed delay).
  let killedAt = 0;
  const longCall = four[0].client.callTool({ name: 'rerank', arguments: { query: 'search', documents } }, undefined, {
    onprogress: () => {
      if (killedAt) return;
      killedAt = Date.now();
      process.kill(victim, 'SIGKILL');
    },
  });
  await assert.rejects(longCall, /daemon stopped/);
  assert.ok(killedAt > 0);
  for (const s of four) {
    await scorePair(s.client).catch(() => undefined); // the next call may fail
    assert.deepEqual(await scorePair(s.client), reference); // the one after must not
  }
  assert.ok(Date.now() - killedAt < 20_000, `recovered in ${Date.now() - killedAt} ms`);
  for (const s of four) assert.equal(s.closed(), false);
  const after = await status(dir);
  const tiny = after.daemons.find((x) => x.models.some((m) => /tiny-ce/.test(m)))!;
  assert.notEqual(tiny.pid, victim);
  assert.equal(tiny.clients, 4);
  // The replayed initialize kept each session's client name.
  await call(four[2].client, 'feedback', { query: 'after', document: 'restart', label: 0 });
  const d2 = new Database(db, { readonly: true });
  assert.equal((d2.prepare("SELECT source FROM feedback_events WHERE query = 'after'").get() as { source: string }).source, 'vscode');
  d2.close();

  // `daemon stop` stops both; clients carry on with their next call.
  const stop = await runCli(['daemon', 'stop'], { env: { RERANK_DAEMON_DIR: dir } });
  assert.equal(JSON.parse(stop.stdout).stopped.length, 2);
  assert.equal((await status(dir)).running, false);
  assert.deepEqual(await scorePair(four[1].client), reference);
  assert.equal(clientsOf(await status(dir)), 1, 'a shim reconnects when its client next calls');
  for (const s of four) assert.deepEqual(await scorePair(s.client), reference);
  assert.equal(clientsOf(await status(dir)), 4);
  await Promise.all([...four, other].map((s) => s.client.close()));
});

test('two shims started at the same instant end with one daemon', async () => {
  const dir = daemonDir();
  const env = { RERANK_FEEDBACK_DB: freshDbPath() };
  const pair = await Promise.all([shim('a', dir, ['--model', TINY_CE], env), shim('b', dir, ['--model', TINY_CE], env)]);
  for (const s of pair) await scorePair(s.client);
  const st = await status(dir);
  assert.equal(st.daemons.length, 1, JSON.stringify(st));
  assert.equal(st.daemons[0].clients, 2);
  const log = readdirSync(dir).filter((n) => n.endsWith('.log'));
  assert.equal(log.length, 1);
  assert.equal(shimLines(readFileSync(join(dir, log[0]), 'utf8'), /listening on/).length, 1, 'one daemon ever listened');
  // SIGHUP to a shim reloads the one shared model, as it reloads a standalone server's.
  process.kill(pair[0].transport.pid!, 'SIGHUP');
  await until('the shared model to reload', 20_000, async () => (/model reloaded \(SIGHUP\)/.test(readFileSync(join(dir, log[0]), 'utf8')) ? true : undefined));
  for (const s of pair) await scorePair(s.client);
  await Promise.all(pair.map((s) => s.client.close()));
});

test('the daemon exits after --daemon-idle-seconds without clients', async () => {
  const dir = daemonDir();
  const s = await shim('idle', dir, ['--model', TINY_CE, '--daemon-idle-seconds', '2'], { RERANK_FEEDBACK_DB: freshDbPath() });
  await scorePair(s.client);
  assert.equal((await status(dir)).running, true);
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal((await status(dir)).running, true, 'a connected client keeps it');
  await s.client.close();
  await until('the idle daemon to exit', 20_000, async () => ((await status(dir)).running ? undefined : true));
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.sock')), []);
});

async function checkFallback(dir: string, pattern: RegExp, env: Record<string, string> = {}): Promise<void> {
  const s = await shim('fallback', dir, ['--model', TINY_CE], { RERANK_FEEDBACK_DB: freshDbPath(), ...env });
  await scorePair(s.client);
  const lines = shimLines(s.stderr(), /daemon/);
  assert.equal(lines.length, 1, s.stderr());
  assert.match(lines[0], pattern);
  assert.match(lines[0], /standalone/);
  assert.match(s.stderr(), /serving MCP over stdio/);
  await s.client.close();
}

test('a daemon directory open to others, or owned by another user, is refused with one line; the client is served standalone', async () => {
  const open = daemonDir();
  chmodSync(open, 0o755);
  await checkFallback(open, new RegExp(`${open}.*mode 755.*chmod 700`));
  assert.deepEqual(readdirSync(open), [], 'nothing was created in it');
  if (process.getuid?.() === 0) {
    const foreign = daemonDir();
    chownSync(foreign, 65534, 65534);
    await checkFallback(foreign, /belongs to uid 65534/);
  } else {
    await checkFallback('/', /belongs to uid 0/);
  }
});

test('a socket path over the Unix limit, or a daemon that cannot start, falls back with one line', async () => {
  const deep = join(daemonDir(), 'x'.repeat(60), 'y'.repeat(60));
  mkdirSync(deep, { recursive: true, mode: 0o700 });
  await checkFallback(deep, /over the 10\d-byte limit/);
  // A directory the daemon's log cannot be written into.
  const locked = daemonDir();
  writeFileSync(join(locked, 'x'), '');
  chmodSync(locked, 0o500);
  if (process.getuid?.() !== 0) await checkFallback(locked, /cannot write/);
});

test('--standalone and RERANK_STANDALONE=1 serve in process, with no daemon', async () => {
  const dir = daemonDir();
  const a = await shim('standalone', dir, ['--model', TINY_CE, '--standalone'], { RERANK_FEEDBACK_DB: freshDbPath() });
  const b = await shim('standalone-env', dir, ['--model', TINY_CE], { RERANK_FEEDBACK_DB: freshDbPath(), RERANK_STANDALONE: '1' });
  for (const s of [a, b]) {
    await scorePair(s.client);
    assert.match(s.stderr(), /model loaded/, 'the model loaded in this process');
    assert.doesNotMatch(s.stderr(), /daemon/);
  }
  assert.equal((await status(dir)).running, false);
  assert.deepEqual(readdirSync(dir), []);
  await Promise.all([a, b].map((s) => s.client.close()));
});

test('--print-config says whether stdio would use the daemon', async () => {
  const dir = daemonDir();
  const shared = JSON.parse((await runCli(['--model', TINY_CE, '--print-config'], { env: { RERANK_DAEMON_DIR: dir } })).stdout);
  assert.equal(shared.stdio, 'shared daemon');
  assert.match(shared['daemon-socket'], new RegExp(`^${dir}/d-[0-9a-f]{16}\\.sock$`));
  const standalone = JSON.parse((await runCli(['--standalone', '--print-config'], { env: { RERANK_DAEMON_DIR: dir } })).stdout);
  assert.match(standalone.stdio, /^standalone/);
  chmodSync(dir, 0o755);
  const refused = JSON.parse((await runCli(['--print-config'], { env: { RERANK_DAEMON_DIR: dir } })).stdout);
  assert.match(refused.stdio, /^standalone: .*mode 755/);
});

test('the shim loads no model code: no ONNX Runtime, tokenizer, SQLite or engine modules, RSS <= 60 MB', async () => {
  const dir = daemonDir();
  const env = { RERANK_FEEDBACK_DB: freshDbPath() };
  const first = await shim('first', dir, ['--model', TINY_CE], env);
  await scorePair(first.client);
  // The second shim attaches to the running daemon; a loader hook records every module it loads.
  const imports = join(dir, 'imports.txt');
  const hook = join(REPO_ROOT, 'test', 'helpers', 'record-imports.mjs');
  const s = await shim('second', dir, ['--model', TINY_CE], { ...env, NODE_OPTIONS: `--import ${hook}`, RERANK_TEST_IMPORT_LOG: imports });
  await scorePair(s.client);
  const pid = s.transport.pid!;
  const loaded = readFileSync(imports, 'utf8').split('\n').filter((l) => l.startsWith(`${pid} `)).map((l) => l.slice(String(pid).length + 1));
  assert.ok(loaded.some((u) => u.endsWith('/dist/transports/daemon-shim.js')), 'the hook saw the shim');
  const heavy = loaded.filter((u) => /\/dist\/(engine|model|tokenizer|feedback|mcp)\/|\/dist\/hub\/(?!hub-env)|onnxruntime|better-sqlite3|@huggingface|@modelcontextprotocol|zod|express/.test(u));
  assert.deepEqual(heavy, []);
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  assert.doesNotMatch(maps, /onnxruntime|better_sqlite3/);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  assert.ok(rssKb <= 60 * 1024, `shim RSS ${rssKb} kB`);
  await Promise.all([first, s].map((x) => x.client.close()));
});

test('a client-config entry, unchanged, launches the shim and reaches the daemon', async () => {
  const dir = daemonDir();
  const printed = await runCli(['client-config', 'cursor', '--model', TINY_CE, '--db', freshDbPath()]);
  const entry = JSON.parse(printed.stdout).mcpServers.rerank as { command: string; args: string[]; env: Record<string, string> };
  const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: { ...(process.env as Record<string, string>), ...entry.env, RERANK_DAEMON_DIR: dir } });
  const client = new Client({ name: 'cursor', version: '1' });
  await client.connect(transport);
  try {
    await scorePair(client);
    const st = await status(dir);
    assert.equal(st.daemons[0].clients, 1);
    assert.notEqual(st.daemons[0].pid, transport.pid);
  } finally {
    await client.close();
  }
});

test('a daemon answers a shim of another version or configuration with a refusal, not a session', async () => {
  const dir = daemonDir();
  const s = await shim('v', dir, ['--model', TINY_CE], { RERANK_FEEDBACK_DB: freshDbPath() });
  await scorePair(s.client);
  const { daemons } = (await status(dir)) as unknown as { daemons: { socket: string; version: string }[] };
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(daemons[0].socket, () => socket.write(JSON.stringify({ rerank_daemon: 1, op: 'attach', key: '0123456789abcdef', version: '9.9.9' }) + '\n'));
    let text = '';
    socket.on('data', (d) => (text += d)).on('end', () => resolve(text)).on('error', reject);
  });
  const answer = JSON.parse(reply.trim()) as { ok: boolean; reason: string };
  assert.equal(answer.ok, false);
  assert.match(answer.reason, new RegExp(`serves rerank-mcp ${daemons[0].version}.*asked for 9\\.9\\.9`));
  assert.equal((await status(dir)).daemons[0].clients, 1);
  await s.client.close();
});

test('the daemon key changes with every serve option and every variable of DAEMON_ENV; per-client settings leave it alone', () => {
  const base: NodeJS.ProcessEnv = { HOME: '/home/someone', PATH: '/usr/bin' };
  const keyOf = (argv: string[], env: NodeJS.ProcessEnv = {}) => daemonKey(parseConfig(argv, { ...base, ...env }, 'serve'), { ...base, ...env });
  const plain = keyOf([]);
  // A value other than the default for each option, of its kind.
  const other = (o: (typeof OPTIONS)[number]): string[] => {
    if (o.key === 'stateless') return ['--http', '--stateless'];
    if (o.kind === 'boolean') return [`--${o.flag}`];
    if (o.kind === 'int') return [`--${o.flag}`, String(typeof o.default === 'number' ? o.default + 1 : 3)];
    if (typeof o.kind === 'object') return [`--${o.flag}`, o.kind.oneOf.find((v) => v !== o.default)!];
    const values: Partial<Record<string, string>> = { allowedHosts: 'box.lan', host: '0.0.0.0', corsOrigins: 'https://app.example.com' };
    return [`--${o.flag}`, values[o.key] ?? 'owner/other-value'];
  };
  const serveOptions = OPTIONS.filter((o) => !o.only || o.only.includes('serve'));
  assert.ok(serveOptions.length >= 25, 'the option table is read');
  for (const o of serveOptions) {
    const argv = other(o);
    const without = o.key === 'stateless' ? keyOf(['--http']) : plain;
    if (o.key in PER_CLIENT_OPTIONS) assert.equal(keyOf(argv), without, `--${o.flag} is per client: ${PER_CLIENT_OPTIONS[o.key]}`);
    else assert.notEqual(keyOf(argv), without, `--${o.flag} ${argv.slice(1).join(' ')} must pick another daemon`);
    // An option's variable is the option: the same daemon as the flag.
    if (o.env && o.kind !== 'boolean' && !(o.key in PER_CLIENT_OPTIONS) && o.key !== 'stateless') assert.equal(keyOf([], { [o.env]: argv[1] }), keyOf(argv), `${o.env} = --${o.flag}`);
  }
  // Each variable of the list, and a made-up one under each prefix (a new PG* or HF_* variable is covered before anyone names it).
  const names = ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD', 'PGPASSFILE', 'PGSSLMODE', 'PGOPTIONS', 'HF_HOME', 'HF_HUB_CACHE', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_TOKEN', 'RERANK_DEBUG', 'XDG_CACHE_HOME'];
  for (const entry of DAEMON_ENV) names.push(entry.endsWith('*') ? `${entry.slice(0, -1)}SOMETHING_NEW` : entry);
  for (const name of names) assert.notEqual(keyOf([], { [name]: 'x1' }), plain, `${name} must pick another daemon`);
  assert.notEqual(keyOf([], { PGDATABASE: 'a' }), keyOf([], { PGDATABASE: 'b' }));
  for (const [name, why] of Object.entries(PER_CLIENT_ENV)) assert.equal(keyOf([], { [name]: '/x' }), plain, `${name} is per client: ${why}`);
  // Variables no daemon reads do not split clients (a client's own PATH, NODE_OPTIONS, terminal).
  assert.equal(keyOf([], { PATH: '/opt/bin', NODE_OPTIONS: '--import x', TERM: 'dumb' }), plain);
});

test('two stdio clients differing only in --prompt-template each get a daemon of their own and their template', async () => {
  const dir = daemonDir();
  const env = { RERANK_FEEDBACK_DB: freshDbPath() };
  const none = await shim('none', dir, ['--model', QWEN3_TINY, '--prompt-template', 'none'], env);
  const qwen = await shim('qwen', dir, ['--model', QWEN3_TINY, '--prompt-template', 'qwen3-reranker'], env);
  const template = async (c: Client) => ((await call(c, 'model_info', {})).structuredContent as { prompt_template: string }).prompt_template;
  assert.equal(await template(none.client), 'none');
  assert.equal(await template(qwen.client), 'qwen3-reranker');
  // The instruction is per call: taken by the prompted daemon, refused (one line) by the raw one.
  const args = { query: 'q', document: 'd', instruction: 'Find the code' };
  assert.notEqual((await call(qwen.client, 'score_pair', args)).isError, true);
  assert.equal((await call(none.client, 'score_pair', args)).isError, true);
  const st = await status(dir);
  assert.equal(st.daemons.length, 2, JSON.stringify(st));
  assert.deepEqual(st.daemons.map((d) => d.clients), [1, 1]);
  await Promise.all([none, qwen].map((s) => s.client.close()));
});

test('two stdio clients with one postgres:// URL and different PGDATABASE each write into their own database', { skip: postgresSkip() }, async () => {
  const server = await startPostgres();
  try {
    const urls = await Promise.all(['rerank_a', 'rerank_b'].map((n) => server.createDatabase(n)));
    // The URL names no database: node-postgres takes it from PGDATABASE.
    const shared = server.url('').replace(/\/$/, '');
    const dir = daemonDir();
    const a = await shim('client-a', dir, ['--model', TINY_CE, '--db', shared], { PGDATABASE: 'rerank_a' });
    const b = await shim('client-b', dir, ['--model', TINY_CE, '--db', shared], { PGDATABASE: 'rerank_b' });
    for (const [c, q] of [[a, 'query from a'], [b, 'query from b']] as const) assert.notEqual((await call(c.client, 'feedback', { query: q, document: 'doc', label: 1 })).isError, true);
    const rows = async (url: string) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query('SELECT query, source FROM feedback_events ORDER BY id')).rows.map((r: { query: Buffer | string; source: string }) => `${r.query.toString()} / ${r.source}`);
      } finally {
        await client.end();
      }
    };
    assert.deepEqual(await rows(urls[0]), ['query from a / client-a']);
    assert.deepEqual(await rows(urls[1]), ['query from b / client-b']);
    assert.equal((await status(dir)).daemons.length, 2);
    await Promise.all([a, b].map((s) => s.client.close()));
    stopDaemons(dir);
  } finally {
    server.destroy();
  }
});

test('a stopped daemon (SIGSTOP): the call under way gets an error naming it, a new daemon takes the socket over, the old one, resumed, leaves it alone', async (t) => {
  const dir = daemonDir();
  const env = { RERANK_FEEDBACK_DB: freshDbPath(), RERANK_DAEMON_LIVENESS_MS: '3000' };
  const args = ['--model', TINY_CE, '--max-batch-tokens', '512'];
  const a = await shim('a', dir, args, env);
  const reference = await scorePair(a.client);
  const first = (await status(dir)).daemons[0].pid;
  const documents = Array.from({ length: 1000 }, (_, i) => `${i}: a document about ranking and search number ${i}. `.repeat(6));
  let stoppedAt = 0;
  try {
    const long = a.client.callTool({ name: 'rerank', arguments: { query: 'search', documents } }, undefined, {
      onprogress: () => {
        if (stoppedAt) return;
        stoppedAt = Date.now();
        process.kill(first, 'SIGSTOP');
      },
    });
    await assert.rejects(long, new RegExp(`daemon \\(pid ${first}, socket ${dir}/d-[0-9a-f]{16}\\.sock\\) stopped answering.*kill -CONT ${first}`));
    const failedAfter = Date.now() - stoppedAt;
    assert.ok(failedAfter < 3000 + 5000, `failed after ${failedAfter} ms`);
    t.diagnostic(`the call failed ${failedAfter} ms after SIGSTOP (deadline 3000 ms)`);
    assert.equal(a.closed(), false);
    // A new client, and the first one's next call, are served by a new daemon.
    const bStarted = Date.now();
    const b = await shim('b', dir, args, env);
    assert.deepEqual(await scorePair(b.client), reference);
    t.diagnostic(`a new client was served ${Date.now() - bStarted} ms after it started, by a new daemon`);
    assert.deepEqual(await scorePair(a.client), reference);
    const st = await status(dir);
    assert.equal(st.running, true);
    assert.equal(st.daemons.length, 1, JSON.stringify(st));
    assert.notEqual(st.daemons[0].pid, first);
    assert.equal(st.daemons[0].current, true);
    assert.equal(st.daemons[0].clients, 2);
    assert.deepEqual(st.not_answering.map((d) => d.pid), [first], 'the stopped daemon is listed as not answering');
  } finally {
    process.kill(first, 'SIGCONT');
  }
  // Resumed, the first daemon finds its clients gone and its socket taken over: it exits, leaving the new one's socket.
  await until('the resumed daemon to exit', 30_000, async () => (processAlive(first) ? undefined : true));
  const st = await status(dir);
  assert.equal(st.running, true, JSON.stringify(st));
  assert.equal(st.daemons.length, 1);
  assert.equal(st.daemons[0].current, true);
  assert.equal(st.daemons[0].clients, 2);
  const second = st.daemons[0].pid;
  assert.deepEqual(await scorePair(a.client), reference);
  assert.equal((await status(dir)).daemons[0].pid, second, 'no third daemon');
  await a.client.close();
});

test('after a daemon crash, a call in flight is answered even when a second request reused its id', async () => {
  const dir = daemonDir();
  const child = spawn(process.execPath, [CLI, '--model', TINY_CE, '--max-batch-tokens', '512'], {
    env: { ...process.env, RERANK_DAEMON_DIR: dir, RERANK_FEEDBACK_DB: freshDbPath() },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const received: { id?: unknown; method?: string; error?: { message: string }; result?: unknown }[] = [];
  let buffered = '';
  child.stdout.on('data', (d) => {
    buffered += d;
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
      received.push(JSON.parse(buffered.slice(0, nl)));
      buffered = buffered.slice(nl + 1);
    }
  });
  const send = (m: object) => child.stdin.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\n');
  const answersTo = (id: string) => received.filter((m) => m.id === id && m.method === undefined);
  try {
    send({ id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    await until('initialize', 60_000, async () => (answersTo('init').length ? true : undefined));
    send({ method: 'notifications/initialized' });
    // Long enough to be still running when the duplicate id and the SIGKILL arrive: at 6 repeats a quiet
    // machine finished the whole call before the duplicate reached the daemon (CI, 2.3 s for the test).
    const documents = Array.from({ length: 1000 }, (_, i) => `${i}: a document about ranking and search number ${i}. `.repeat(24));
    send({ id: 'x', method: 'tools/call', params: { name: 'rerank', arguments: { query: 'search', documents }, _meta: { progressToken: 'p' } } });
    await until('the rerank to be under way', 60_000, async () => (received.some((m) => m.method === 'notifications/progress') ? true : undefined));
    send({ id: 'x', method: 'tools/call', params: { name: 'score_pair', arguments: { query: 'q', document: 'd' } } });
    await until('the duplicate id to be refused', 20_000, async () => (answersTo('x').length ? true : undefined));
    assert.match(answersTo('x')[0].error!.message, /already used by a request still in flight/);
    process.kill((await status(dir)).daemons[0].pid, 'SIGKILL');
    await until('the call under way to be answered', 20_000, async () => (answersTo('x').length === 2 ? true : undefined));
    assert.match(answersTo('x')[1].error!.message, /daemon stopped while this call ran/);
  } finally {
    child.kill('SIGKILL');
  }
});
