/**
 * `rerank-mcp daemon status|stop`, and `daemon run`, which the stdio shim starts: the shared
 * per-user server that every stdio client of one configuration talks to.
 */
import { ConfigError, parseConfig } from '../config.js';
import { setLogFormat } from '../log.js';
import { controlDaemon, daemonDir, daemonKey, daemonPaths, daemonSockets, prepareDaemonDir, processAlive, type DaemonStatus } from '../transports/daemon-common.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_MODEL } from '../defaults.js';

const HELP = `Manage the shared daemon that stdio clients use (see docs/daemon.md).

Usage: rerank-mcp daemon status   one JSON line: {"running","dir","daemons":[{"pid","key","version","clients","models","uptime_s","socket","current"}],"not_answering":[{"pid","key","socket"}]}
       rerank-mcp daemon stop     stop every daemon in the directory; clients reconnect on their next call

The directory is RERANK_DAEMON_DIR, else $XDG_RUNTIME_DIR/rerank-mcp, else ~/.cache/rerank-mcp/run.
`;

export async function runDaemon(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const dir = daemonDir();
  if (sub === 'status') {
    const { daemons, notAnswering } = await survey(dir, 'status');
    process.stdout.write(JSON.stringify({ running: daemons.length > 0, dir, daemons, not_answering: notAnswering }) + '\n');
    return 0;
  }
  if (sub === 'stop') {
    const { daemons } = await survey(dir, 'stop');
    // Stopped means gone: a daemon finishes the calls under way first (at most 10 s).
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && daemons.some((d) => processAlive(d.pid))) await new Promise((r) => setTimeout(r, 100));
    process.stdout.write(JSON.stringify({ stopped: daemons.map((d) => d.pid), dir }) + '\n');
    return 0;
  }
  if (sub === 'run') return runDaemonProcess(rest);
  throw new ConfigError(`unknown daemon command "${sub}" (expected status or stop)`);
}

/**
 * Asks every daemon in `dir` on its own socket, so each is listed with its own fields, and a
 * daemon that no longer holds its key's socket is listed too. A live daemon that does not answer
 * (stopped, hung) is listed apart; the files of killed daemons are not.
 */
async function survey(dir: string, op: 'status' | 'stop'): Promise<{ daemons: DaemonStatus[]; notAnswering: { pid: number; key: string; socket: string }[] }> {
  const sockets = daemonSockets(dir);
  const replies = await Promise.all(sockets.map((s) => controlDaemon(s.socket, op)));
  const daemons: DaemonStatus[] = [];
  const notAnswering: { pid: number; key: string; socket: string }[] = [];
  for (const [i, r] of replies.entries()) {
    if (r?.ok) daemons.push({ pid: r.pid, key: r.key, version: r.version, clients: r.clients, models: r.models, uptime_s: r.uptime_s, socket: r.socket, current: r.current ?? true });
    else if (sockets[i].pid !== undefined && processAlive(sockets[i].pid!)) notAnswering.push({ pid: sockets[i].pid!, key: sockets[i].key, socket: sockets[i].socket });
  }
  return { daemons, notAnswering };
}

/** The daemon itself: loads the heavy modules only here. */
async function runDaemonProcess(argv: string[]): Promise<number> {
  const config = parseConfig(argv, process.env, 'serve');
  setLogFormat(config.logFormat);
  const dir = daemonDir();
  prepareDaemonDir(dir);
  const key = daemonKey(config);
  const paths = daemonPaths(dir, key);
  const { openSharedEngine } = await import('./serve.js');
  const { runDaemonServer } = await import('../transports/daemon-server.js');
  const engine = openSharedEngine(config, { exitOnLocalFailure: false });
  await engine.startTelemetry();
  // A local directory that does not load is the user's mistake to see at start, as a standalone
  // server shows it: the daemon exits before it listens, and the shim falls back to standalone,
  // which reports it in one line. (A repo model may take a download: that loads after listening.)
  if (engine.localDir) {
    await engine.startLoading();
    if (engine.host.state === 'failed') process.exit(1);
  }
  await runDaemonServer({
    paths,
    key,
    idleMs: config.daemonIdleSeconds * 1000,
    maxLineBytes: config.maxBodyMb * 1024 * 1024,
    engine,
    modelName: config.model === undefined ? DEFAULT_MODEL : existsSync(config.model) ? path.resolve(config.model) : config.model,
  });
  // A daemon loads its model at once: its first client should not wait for it.
  setImmediate(() => void engine.startLoading());
  return new Promise<number>(() => undefined);
}
