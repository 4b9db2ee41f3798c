/**
 * What the stdio shim and the shared daemon agree on: where the daemon lives, which daemon a
 * configuration belongs to, and the one-line handshake on its socket. Only Node built-ins here:
 * the shim loads this, and must stay small.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, realpathSync, existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.js';
import { resolveDbPath } from '../db-location.js';
import { DEFAULT_MODEL } from '../defaults.js';
import { PACKAGE_VERSION } from '../version.js';

/** Bumped when the handshake or control messages change shape. */
export const DAEMON_PROTOCOL = 1;
/** sun_path is 108 bytes on Linux (104 on macOS), including the terminating NUL. */
const MAX_SOCKET_PATH = process.platform === 'darwin' ? 103 : 107;

/** The daemon cannot be used by this process; the message is the one line the user sees. */
export class DaemonUnavailable extends Error {}

/** RERANK_DAEMON_DIR, else $XDG_RUNTIME_DIR/rerank-mcp, else a run directory under the user's cache (LOCALAPPDATA on Windows). */
export function daemonDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  if (env.RERANK_DAEMON_DIR) return path.resolve(env.RERANK_DAEMON_DIR);
  if (platform === 'win32') return path.win32.join(env.LOCALAPPDATA || path.win32.join(home, 'AppData', 'Local'), 'rerank-mcp', 'run');
  // XDG: relative values are invalid and ignored.
  if (env.XDG_RUNTIME_DIR && path.isAbsolute(env.XDG_RUNTIME_DIR)) return path.join(env.XDG_RUNTIME_DIR, 'rerank-mcp');
  const cache = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(home, platform === 'darwin' ? 'Library/Caches' : '.cache');
  return path.join(cache, 'rerank-mcp', 'run');
}

/**
 * Creates the directory 0700 if missing; refuses one that another user owns or that group or
 * others may enter, since whoever can reach the socket can use (and stop) this user's daemon.
 */
export function prepareDaemonDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DaemonUnavailable(`cannot create the daemon directory ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): set RERANK_DAEMON_DIR to a writable directory, or use --standalone`);
  }
  if (process.platform === 'win32') return; // %LOCALAPPDATA% is already private to the user
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new DaemonUnavailable(`the daemon directory ${dir} is not a directory (a link?): remove it or set RERANK_DAEMON_DIR`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new DaemonUnavailable(`the daemon directory ${dir} belongs to uid ${st.uid}, not to you (uid ${uid}): set RERANK_DAEMON_DIR to a directory of your own`);
  if ((st.mode & 0o077) !== 0) throw new DaemonUnavailable(`the daemon directory ${dir} has mode ${(st.mode & 0o777).toString(8)}, open to other users: run chmod 700 ${dir}`);
}

/** The directory of the installed package: two installations of one version may differ in code. */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * One daemon per effective engine configuration: the same model files, variant, limits,
 * batching, cache and feedback database, the same Hub settings, the same rerank-mcp. Anything a
 * client could notice in its answers is in here; only the daemon's idle timeout is not.
 */
export function daemonKey(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  const local = config.model !== undefined && existsSync(config.model);
  const identity = {
    version: PACKAGE_VERSION,
    protocol: DAEMON_PROTOCOL,
    package: PACKAGE_ROOT,
    model: local ? realpathSync(config.model!) : (config.model ?? DEFAULT_MODEL),
    variant: config.variant,
    prefixReuse: config.prefixReuse,
    maxLength: config.maxLength ?? null,
    activation: config.activation ?? null,
    threads: config.threads ?? null,
    maxBatchTokens: config.maxBatchTokens,
    batchWaitMs: config.batchWaitMs,
    chunkOverlap: config.chunkOverlap,
    maxCallTokens: config.maxCallTokens,
    maxCallMs: config.maxCallMs,
    cacheSize: config.cacheSize,
    db: resolveDbPath(config.db, env),
    rerankLog: [config.rerankLogMaxCalls, config.rerankLogMaxDays, config.rerankLogMaxMb],
    maxBodyMb: config.maxBodyMb,
    noWatch: config.noWatch,
    hub: ['HF_HOME', 'HF_HUB_CACHE', 'XDG_CACHE_HOME', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_TOKEN'].map((k) => env[k] ?? null),
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16);
}

export interface DaemonPaths {
  dir: string;
  socket: string;
  lock: string;
  log: string;
}

export function daemonPaths(dir: string, key: string): DaemonPaths {
  const base = path.join(dir, `d-${key}`);
  const user = (() => {
    try {
      return userInfo().username.replace(/[^A-Za-z0-9_-]/g, '_');
    } catch {
      return 'user';
    }
  })();
  const socket = process.platform === 'win32' ? `\\\\.\\pipe\\rerank-mcp-${user}-${key}` : `${base}.sock`;
  if (process.platform !== 'win32' && Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new DaemonUnavailable(`the daemon socket path ${socket} is ${Buffer.byteLength(socket)} bytes, over the ${MAX_SOCKET_PATH}-byte limit of Unix sockets: set RERANK_DAEMON_DIR to a shorter directory`);
  }
  return { dir, socket, lock: `${base}.lock`, log: `${base}.log` };
}

/** Sockets of daemons in `dir` (on Windows: what the lock/log files name). */
export function daemonSockets(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const ext = process.platform === 'win32' ? '.log' : '.sock';
  return names.filter((n) => /^d-[0-9a-f]{16}/.test(n) && n.endsWith(ext)).map((n) => daemonPaths(dir, n.slice(2, 18)).socket);
}

export interface Hello {
  rerank_daemon: number;
  op: 'attach' | 'status' | 'stop' | 'reload';
  key?: string;
  version?: string;
  pid?: number;
}

export interface DaemonStatus {
  pid: number;
  version: string;
  key: string;
  clients: number;
  models: string[];
  uptime_s: number;
  socket: string;
}

/** Reads one newline-terminated line; what follows it is pushed back into the socket. */
export function readLine(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const nl = buffered.indexOf(0x0a);
      if (nl === -1) return;
      socket.pause();
      const rest = buffered.subarray(nl + 1);
      if (rest.length > 0) socket.unshift(rest);
      finish(undefined, buffered.subarray(0, nl).toString('utf8'));
    };
    const onEnd = () => finish(new Error('closed before answering'));
    const onError = (err: Error) => finish(err);
    const finish = (err?: Error, line?: string) => {
      clearTimeout(timer);
      socket.off('data', onData).off('end', onEnd).off('close', onEnd).off('error', onError);
      if (err) reject(err);
      else resolve(line!);
    };
    socket.on('data', onData).once('end', onEnd).once('close', onEnd).once('error', onError);
  });
}

export function connectSocket(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** One control request (status, stop) to the daemon at `socketPath`; undefined when none answers. */
export async function controlDaemon(socketPath: string, op: 'status' | 'stop' | 'reload', timeoutMs = 5000): Promise<(DaemonStatus & { ok: boolean }) | undefined> {
  let socket: Socket;
  try {
    socket = await connectSocket(socketPath);
  } catch {
    return undefined;
  }
  try {
    socket.write(JSON.stringify({ rerank_daemon: DAEMON_PROTOCOL, op } satisfies Hello) + '\n');
    return JSON.parse(await readLine(socket, timeoutMs));
  } catch {
    return undefined;
  } finally {
    socket.destroy();
  }
}
