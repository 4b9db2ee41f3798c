/**
 * The stdio shim: what a client launches by default. It relays the client's JSON-RPC lines to the
 * shared per-user daemon of its configuration, starting that daemon when none answers, and starts
 * a new one when it dies, replaying the client's `initialize` so that the client never sees a
 * second handshake. It loads no model code (Node built-ins and light modules only): its memory is
 * what each extra client costs.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Config } from '../config.js';
import { log } from '../log.js';
import { PACKAGE_VERSION } from '../version.js';
import { requestIdOf } from './stdin-line-guard.js';
import { connectSocket, controlDaemon, DAEMON_PROTOCOL, daemonDir, daemonKey, daemonPaths, DaemonUnavailable, livenessMs, prepareDaemonDir, readLine, type DaemonPaths, type Hello } from './daemon-common.js';

/** How long a shim waits for a daemon it started (or saw being started) to listen: a local model loads first. */
const START_TIMEOUT_MS = 120_000;
/** A lock older than this is left from a shim that died while starting a daemon. */
const STALE_LOCK_MS = 60_000;
/** Lines this long are not parsed whole; their id is read from their ends. */
const PARSE_LIMIT = 1 << 20;
const REPLAY_PREFIX = 'rerank-mcp-shim-reinit-';
const PING_PREFIX = 'rerank-mcp-shim-ping-';
const WRITE_SLICE = 1 << 20;
/** After the client closed stdin, how long its calls under way may still take (a standalone server drains 10 s, after loading). */
const CLIENT_GONE_DRAIN_MS = 40_000;
const SIGNAL_DRAIN_MS = 10_000;

export interface ShimOptions {
  config: Config;
  /** The serve options as given, passed on to a daemon this shim starts. */
  serveArgs: string[];
  /** The CLI script to run the daemon with. */
  cliPath: string;
}

/** Where the daemon would be, or why this process would serve standalone. */
export function daemonPlan(config: Config): { paths: DaemonPaths; key: string } {
  const dir = daemonDir();
  const key = daemonKey(config);
  const paths = daemonPaths(dir, key);
  return { paths, key };
}

/**
 * Attaches to (or starts) the daemon and relays stdio until the client leaves; the process then
 * exits. Resolves only when no daemon can be used, with the one line saying why: the caller then
 * serves standalone in this process.
 */
export async function runShim({ config, serveArgs, cliPath }: ShimOptions): Promise<{ fallback: string }> {
  let plan: { paths: DaemonPaths; key: string };
  let daemon: Daemon;
  try {
    plan = daemonPlan(config);
    prepareDaemonDir(plan.paths.dir);
    daemon = await attach(plan.paths, plan.key, () => spawnDaemon(plan.paths, cliPath, serveArgs));
  } catch (err) {
    if (err instanceof DaemonUnavailable) return { fallback: err.message };
    return { fallback: `the shared daemon could not be used (${(err as Error).message})` };
  }
  const relay = new Relay(plan.paths, () => attach(plan.paths, plan.key, () => spawnDaemon(plan.paths, cliPath, serveArgs)));
  relay.start(daemon);
  return new Promise(() => undefined);
}

/** A connection to a daemon, its pid (for the messages that name it) and the socket file it was reached by. */
interface Daemon {
  socket: Socket;
  pid: number | undefined;
  inode: string | undefined;
}

/**
 * Socket files (device:inode) whose daemon did not answer in time: while a new daemon starts and
 * takes the name over, waiting on the stuck one again would only add a deadline per round.
 */
const unresponsive = new Set<string>();

function inodeOf(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Connects to the daemon of `key`, starting one when none answers; exactly one shim starts it. */
async function attach(paths: DaemonPaths, key: string, start: () => { exited: () => string | undefined }): Promise<Daemon> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let started: { exited: () => string | undefined } | undefined;
  let locked = false;
  try {
    for (let round = 0; ; round++) {
      const inode = inodeOf(paths.socket);
      const socket = inode !== undefined && unresponsive.has(inode) ? undefined : await connectSocket(paths.socket).catch(() => undefined);
      if (socket) {
        socket.on('error', () => undefined);
        socket.write(JSON.stringify({ rerank_daemon: DAEMON_PROTOCOL, op: 'attach', key, version: PACKAGE_VERSION, pid: process.pid } satisfies Hello) + '\n');
        // A daemon that does not answer within the liveness deadline is stopped or hung: another one is started, which takes the socket over.
        const reply = await readLine(socket, livenessMs()).then(
          (l) => JSON.parse(l) as { ok?: boolean; reason?: string; pid?: number },
          (err: Error) => {
            if (inode !== undefined && /^no answer/.test(err.message)) unresponsive.add(inode);
            return undefined;
          },
        );
        if (reply?.ok) return { socket, pid: reply.pid, inode };
        socket.destroy();
        // A daemon that is stopping says so; one of another configuration cannot sit on our socket name.
        if (reply && !/stopping/.test(reply.reason ?? '')) throw new DaemonUnavailable(`the daemon at ${paths.socket} refused this client: ${reply.reason}`);
      }
      const exit = started?.exited();
      if (exit !== undefined) throw new DaemonUnavailable(`the daemon exited (${exit}) before it listened on ${paths.socket}: see ${paths.log}`);
      if (!started) {
        if (takeLock(paths.lock)) {
          locked = true;
          started = start();
        } else {
          clearStaleLock(paths.lock);
        }
      }
      if (Date.now() > deadline) throw new DaemonUnavailable(`no daemon answered on ${paths.socket} within ${START_TIMEOUT_MS / 1000} s: see ${paths.log}`);
      await new Promise((r) => setTimeout(r, Math.min(25 * (round + 1), 200)));
    }
  } finally {
    if (locked) unlinkQuietly(paths.lock);
  }
}

function takeLock(lock: string): boolean {
  try {
    const fd = openSync(lock, 'wx', 0o600);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DaemonUnavailable(`cannot write ${lock} (${(err as NodeJS.ErrnoException).code}): make the daemon directory writable, or set RERANK_DAEMON_DIR`);
  }
}

/** A lock whose shim is gone (killed while starting a daemon) would block every later start. */
function clearStaleLock(lock: string): void {
  try {
    const pid = Number(readFileSync(lock, 'utf8'));
    let alive = Number.isInteger(pid) && pid > 0;
    if (alive) {
      try {
        process.kill(pid, 0);
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (!alive || Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) unlinkQuietly(lock);
  } catch {
    // gone meanwhile, or half-written: the next round looks again
  }
}

/** A daemon's log is kept to about this size: the previous one is kept as .log.1. */
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

function spawnDaemon(paths: DaemonPaths, cliPath: string, serveArgs: string[]): { exited: () => string | undefined } {
  try {
    if (statSync(paths.log).size > LOG_ROTATE_BYTES) renameSync(paths.log, `${paths.log}.1`);
  } catch {
    // no log yet
  }
  const out = openSync(paths.log, 'a', 0o600);
  let exited: string | undefined;
  try {
    // Detached, in its own session: it outlives this client and owns no terminal.
    const child = spawn(process.execPath, [cliPath, 'daemon', 'run', ...serveArgs], {
      detached: true,
      stdio: ['ignore', out, out],
      env: process.env,
      windowsHide: true,
    });
    // Exit 0 is a daemon that found another one listening: the next round attaches to that one.
    child.once('exit', (code, signal) => (exited = code === 0 ? undefined : (signal ?? `code ${code}`)));
    child.once('error', (err) => (exited = err.message));
    child.unref();
  } finally {
    closeSync(out);
  }
  return { exited: () => exited };
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

type Id = string | number;

interface LineInfo {
  id: Id | undefined;
  method: string | undefined;
}

/** The id and method of a JSON-RPC line; a huge line is read only at its ends. */
function inspect(line: Buffer): LineInfo {
  if (line.length <= PARSE_LIMIT) {
    try {
      const m = JSON.parse(line.toString('utf8')) as { id?: unknown; method?: unknown };
      const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : undefined;
      return { id, method: typeof m.method === 'string' ? m.method : undefined };
    } catch {
      return { id: undefined, method: undefined };
    }
  }
  const head = line.subarray(0, 4096).toString('utf8');
  const tail = line.subarray(-4096).toString('utf8');
  const method = /"method"\s*:\s*"([^"]*)"/.exec(head)?.[1];
  return { id: requestIdOf(head, tail.trimEnd()), method };
}

/** Splits a byte stream into lines (each passed with its newline). */
function lines(onLine: (line: Buffer) => void): (chunk: Buffer) => void {
  let parts: Buffer[] = [];
  return (chunk) => {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      parts.push(chunk.subarray(start, nl + 1));
      const line = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      parts = [];
      start = nl + 1;
      if (line.length > 1) onLine(line);
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  };
}

const keyOf = (id: Id) => JSON.stringify(id);

class Relay {
  private socket: Socket | undefined;
  private daemonPid: number | undefined;
  private daemonInode: string | undefined;
  /** Client lines waiting for a daemon (while one is being started). */
  private queue: Buffer[] = [];
  /**
   * Client requests the daemon has not answered, by id, counted: a request that reuses the id of
   * one in flight is refused by the daemon with an answer of its own, and the first still waits
   * for its answer (or its error, if the daemon dies).
   */
  private pending = new Map<string, { id: Id; count: number }>();
  private initialize: Buffer | undefined;
  private initialized = false;
  private reconnecting: Promise<void> | undefined;
  private replays = 0;
  private replay: { id: string; done: () => void } | undefined;
  private clientGone = false;
  private readonly livenessMs = livenessMs();
  private pings = 0;
  /** The ping the daemon has not answered yet. */
  private ping: { id: string; sentAt: number } | undefined;
  /** When the daemon last showed it runs: it sent a line, or read what this shim wrote. */
  private lastSign = 0;

  constructor(
    private readonly paths: DaemonPaths,
    private readonly reattach: () => Promise<Daemon>,
  ) {}

  start(daemon: Daemon): void {
    this.use(daemon);
    process.stdout.on('error', () => process.exit(0)); // the client is gone
    process.stdin.on('data', lines((line) => this.fromClient(line)));
    process.stdin.once('end', () => this.clientLeft());
    // SIGHUP reloads the model, as it does a standalone server: here the shared one, for every client.
    process.on('SIGHUP', () => void controlDaemon(this.paths.socket, 'reload'));
    // As a standalone server does: calls under way are answered (within 10 s), then exit 0.
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        if (this.pending.size > 0) log(`${signal}: finishing ${this.inFlight()} call(s) in flight`);
        process.stdin.pause();
        this.clientLeft(SIGNAL_DRAIN_MS);
      });
    }
    // A daemon that is stopped (SIGSTOP) or hung keeps its socket open and answers nothing: only a deadline tells.
    setInterval(() => this.checkLiveness(), Math.max(50, Math.round(this.livenessMs / 5))).unref();
  }

  private use({ socket, pid, inode }: Daemon): void {
    this.socket = socket;
    this.daemonPid = pid;
    this.daemonInode = inode;
    this.ping = undefined;
    this.lastSign = Date.now();
    socket.on('data', lines((line) => this.fromDaemon(line)));
    socket.once('close', () => this.daemonLeft(socket));
    socket.resume();
  }

  private inFlight(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.count;
    return n;
  }

  private fromClient(line: Buffer): void {
    const { id, method } = inspect(line);
    if (method === 'initialize' && this.initialize === undefined) this.initialize = line;
    if (method === 'notifications/initialized') this.initialized = true;
    if (method !== undefined && id !== undefined) {
      const entry = this.pending.get(keyOf(id));
      if (entry) entry.count++;
      else this.pending.set(keyOf(id), { id, count: 1 });
    }
    if (method === 'notifications/cancelled') this.forget(line);
    if (this.socket && !this.reconnecting) this.send(this.socket, line);
    else {
      this.queue.push(line);
      this.reconnect();
    }
  }

  private fromDaemon(line: Buffer): void {
    this.lastSign = Date.now();
    const { id, method } = inspect(line);
    if (method === undefined && id !== undefined) {
      if (this.replay && id === this.replay.id) return this.replay.done();
      if (typeof id === 'string' && id.startsWith(PING_PREFIX)) {
        if (id === this.ping?.id) this.ping = undefined;
        return;
      }
      this.settle(id);
    }
    process.stdout.write(line);
    if (this.clientGone && this.pending.size === 0) this.socket?.end();
  }

  private settle(id: Id): void {
    const entry = this.pending.get(keyOf(id));
    if (entry && --entry.count <= 0) this.pending.delete(keyOf(id));
  }

  /** A cancelled request gets no answer: nothing to wait for, nothing to fail. */
  private forget(line: Buffer): void {
    try {
      const requestId = (JSON.parse(line.toString('utf8')) as { params?: { requestId?: unknown } }).params?.requestId;
      if (typeof requestId === 'string' || typeof requestId === 'number') this.settle(requestId);
    } catch {
      // malformed: the daemon answers it
    }
  }

  /**
   * While calls are under way, pings the daemon; one that neither answers nor reads what it is
   * sent within the deadline is given up: its calls get an error now instead of never.
   */
  private checkLiveness(): void {
    const socket = this.socket;
    if (!socket || this.reconnecting) return;
    const now = Date.now();
    if (this.ping) {
      if (now - Math.max(this.ping.sentAt, this.lastSign) > this.livenessMs) this.stuck(socket);
      return;
    }
    if (this.pending.size === 0) return;
    this.ping = { id: `${PING_PREFIX}${++this.pings}`, sentAt: now };
    this.send(socket, Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: this.ping.id, method: 'ping' }) + '\n'));
  }

  /**
   * Writes in slices of 1 MiB: each slice handed to the kernel is a sign that the daemon reads (a
   * stopped one fills the socket buffer and takes no more), so a large request on its way to a
   * live daemon never looks like a stuck one.
   */
  private send(socket: Socket, data: Buffer): void {
    for (let at = 0; at < data.length; at += WRITE_SLICE) {
      socket.write(data.subarray(at, at + WRITE_SLICE), () => {
        if (this.socket === socket) this.lastSign = Date.now();
      });
    }
  }

  private stuck(socket: Socket): void {
    const pid = this.daemonPid ?? '?';
    const seconds = (this.livenessMs / 1000).toFixed(1).replace(/\.0$/, '');
    log(`the shared daemon (pid ${pid}, ${this.paths.socket}) did not answer a ping within ${seconds} s: failing its ${this.inFlight()} call(s); the next call starts a new daemon`);
    this.socket = undefined;
    this.ping = undefined;
    if (this.daemonInode !== undefined) unresponsive.add(this.daemonInode);
    socket.destroy();
    this.failPending(
      `the rerank-mcp daemon (pid ${pid}, socket ${this.paths.socket}) stopped answering (no reply to a ping within ${seconds} s: stopped or hung); this call was abandoned and the next call starts a new daemon: retry. If that process stays stuck, end it: kill -CONT ${pid}; kill ${pid}`,
    );
    if (this.clientGone) process.exit(0);
    if (this.queue.length > 0) this.reconnect();
  }

  private daemonLeft(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.replay = undefined;
    this.ping = undefined;
    if (this.clientGone) process.exit(0);
    // A call the daemon took with it gets an answer, not silence; the next call starts a new daemon.
    if (this.pending.size > 0) log(`the shared daemon went away with ${this.inFlight()} call(s) under way: they get an error, the next call starts a new daemon`);
    else log('the shared daemon went away: the next call starts a new one');
    this.failPending('the rerank-mcp daemon stopped while this call ran; a new one starts with the next call: retry');
    if (this.queue.length > 0) this.reconnect();
  }

  /** Every request still waiting gets an error, a reused id once per request that used it. */
  private failPending(message: string): void {
    for (const { id, count } of this.pending.values()) {
      for (let i = 0; i < count; i++) process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message } }) + '\n');
    }
    this.pending.clear();
  }

  private reconnect(): void {
    this.reconnecting ??= this.reestablish()
      .catch((err: Error) => {
        const why = err.message;
        log(`cannot reach a shared daemon: ${why}`);
        // Queued requests are already in `pending`; the next client message tries again.
        this.queue = [];
        this.failPending(`the rerank-mcp daemon could not be started (${why}); retry, or run with --standalone`);
      })
      .finally(() => {
        this.reconnecting = undefined;
        if (this.clientGone && this.pending.size === 0) {
          if (this.socket) this.socket.end();
          else process.exit(0);
        }
      });
  }

  /** A new daemon, and the client's session on it as it was: initialize replayed under an id of our own. */
  private async reestablish(): Promise<void> {
    const daemon = await this.reattach();
    const { socket } = daemon;
    this.use(daemon);
    if (this.initialize) {
      const message = JSON.parse(this.initialize.toString('utf8')) as { id: Id };
      const id = `${REPLAY_PREFIX}${++this.replays}`;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the new daemon did not answer initialize within 30 s: see ${this.paths.log}`)), 30_000);
        this.replay = {
          id,
          done: () => {
            clearTimeout(timer);
            this.replay = undefined;
            resolve();
          },
        };
        socket.once('close', () => reject(new Error(`the new daemon closed the connection: see ${this.paths.log}`)));
        socket.write(JSON.stringify({ ...message, id }) + '\n');
      });
      if (this.initialized) socket.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
    }
    log(`reattached to the shared daemon on ${this.paths.socket}`);
    const queued = this.queue;
    this.queue = [];
    for (const line of queued) this.send(socket, line);
  }

  /**
   * A client that closes stdin right after sending calls still gets their answers, as from a
   * standalone server, which drains its calls before it exits.
   */
  private clientLeft(boundMs = CLIENT_GONE_DRAIN_MS): void {
    if (this.clientGone) return;
    this.clientGone = true;
    if (!this.socket && !this.reconnecting) process.exit(0);
    if (this.pending.size === 0 && !this.reconnecting) this.socket!.end();
    // Only a bound: the daemon closes its side once the last answer left and the socket ended.
    setTimeout(() => process.exit(0), boundMs).unref();
  }
}
