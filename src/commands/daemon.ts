/**
 * `rerank-mcp daemon status|stop`, and `daemon run`, which the stdio shim starts: the shared
 * per-user server that every stdio client of one configuration talks to.
 */
import { ConfigError, parseConfig } from '../config.js';
import { setLogFormat } from '../log.js';
import { controlDaemon, daemonDir, daemonKey, daemonPaths, daemonSockets, prepareDaemonDir, type DaemonStatus } from '../transports/daemon-common.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_MODEL } from '../defaults.js';

const HELP = `Manage the shared daemon that stdio clients use (see docs/daemon.md).

Usage: rerank-mcp daemon status   one JSON line: {"running","pid","clients","models","uptime_s","dir","daemons"}
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
    const daemons = await answering(dir, 'status');
    process.stdout.write(JSON.stringify(summary(dir, daemons)) + '\n');
    return 0;
  }
  if (sub === 'stop') {
    const daemons = await answering(dir, 'stop');
    // Stopped means gone: a daemon finishes the calls under way first (at most 10 s).
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (await answering(dir, 'status')).some((d) => daemons.some((s) => s.pid === d.pid))) {
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stdout.write(JSON.stringify({ stopped: daemons.map((d) => d.pid), dir }) + '\n');
    return 0;
  }
  if (sub === 'run') return runDaemonProcess(rest);
  throw new ConfigError(`unknown daemon command "${sub}" (expected status or stop)`);
}

async function answering(dir: string, op: 'status' | 'stop'): Promise<DaemonStatus[]> {
  const replies = await Promise.all(daemonSockets(dir).map((socket) => controlDaemon(socket, op)));
  return replies.filter((r) => r !== undefined && r.ok).map((r) => ({ pid: r!.pid, version: r!.version, key: r!.key, clients: r!.clients, models: r!.models, uptime_s: r!.uptime_s, socket: r!.socket }));
}

function summary(dir: string, daemons: DaemonStatus[]) {
  return {
    running: daemons.length > 0,
    pid: daemons[0]?.pid ?? null,
    clients: daemons.reduce((n, d) => n + d.clients, 0),
    models: [...new Set(daemons.flatMap((d) => d.models))],
    uptime_s: daemons.reduce((m, d) => Math.max(m, d.uptime_s), 0),
    dir,
    daemons,
  };
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
