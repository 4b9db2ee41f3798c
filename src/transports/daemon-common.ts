/**
 * What the stdio shim and the shared daemon agree on: where the daemon lives, which daemon a
 * configuration belongs to, and the one-line handshake on its socket. Only Node built-ins here:
 * the shim loads this, and must stay small.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPTIONS, type Config } from '../config.js';
import { hubCacheDir } from '../hub/hub-env.js';
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

/** Options that cannot change what a daemon does for its clients, each with why: every other option is in the key. */
export const PER_CLIENT_OPTIONS: Readonly<Partial<Record<keyof Config, string>>> = {
  standalone: 'decides whether this client uses a daemon at all',
  printConfig: 'prints the configuration and exits: never serves',
  help: 'prints the help and exits: never serves',
};

/**
 * Environment variables that change what a daemon does beyond its options, as names or prefixes
 * ending in `*`: node-postgres fills in what a postgres:// URL leaves out from PG* (host, port,
 * database, user, password, SSL, pgpass) and USER; the Hub client reads HF_*; the thread pools
 * of libuv (where ONNX Runtime runs) and OpenMP; the proxies and CAs of downloads. RERANK_* means
 * those that are no option (an option's variable is already in the resolved configuration).
 */
export const DAEMON_ENV: readonly string[] = [
  'PG*',
  'USER',
  'HF_*',
  'HUGGING_FACE_HUB_TOKEN',
  'RERANK_*',
  'UV_THREADPOOL_SIZE',
  'OMP_NUM_THREADS',
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
  'NODE_USE_ENV_PROXY',
  'NODE_EXTRA_CA_CERTS',
  // Where a daemon's traces go (OpenTelemetry's standard variables).
  'OTEL_*',
];

/** RERANK_* variables that only a shim or the test harness reads, each with why: a client may set them alone. */
export const PER_CLIENT_ENV: Readonly<Record<string, string>> = {
  RERANK_DAEMON_DIR: 'picks the directory: another directory holds other daemons anyway',
  RERANK_DAEMON_LIVENESS_MS: "the shim's own deadline for a daemon's answer",
  RERANK_TEST_IMPORT_LOG: "a test hook that records the shim's imports",
};

const OPTION_ENV = new Set(OPTIONS.flatMap((o) => (o.env ? [o.env] : [])));

/** The variables of DAEMON_ENV set in `env`, by name, sorted. */
export function daemonEnv(env: NodeJS.ProcessEnv = process.env): [string, string][] {
  const wanted = (name: string) =>
    !OPTION_ENV.has(name) && !(name in PER_CLIENT_ENV) && DAEMON_ENV.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
  return Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '' && wanted(e[0]))
    .sort(([a], [b]) => (a < b ? -1 : 1));
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * One daemon per effective configuration: every serve option as resolved (the default model, a
 * local model by its real path, the Hub cache, the database), every variable of DAEMON_ENV, and
 * this rerank-mcp (version, protocol, installation). Built from the option table and that list,
 * so an option added later is in the key unless PER_CLIENT_OPTIONS says why not. Values that may
 * be secrets (variables, the token, a database URL) enter only as hashes.
 */
export function daemonKey(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  const options: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    if ((spec.only && !spec.only.includes('serve')) || spec.key in PER_CLIENT_OPTIONS) continue;
    options[spec.flag] = config[spec.key] ?? null;
  }
  const local = config.model !== undefined && existsSync(config.model);
  options.model = local ? realpathSync(config.model!) : (config.model ?? DEFAULT_MODEL);
  options['model-cache'] = hubCacheDir(env);
  options.db = digest(resolveDbPath(config.db, env));
  if (config.token !== undefined) options.token = digest(config.token);
  const identity = {
    version: PACKAGE_VERSION,
    protocol: DAEMON_PROTOCOL,
    package: PACKAGE_ROOT,
    options,
    env: daemonEnv(env).map(([name, value]) => [name, digest(value)]),
  };
  return digest(JSON.stringify(identity)).slice(0, 16);
}

/** How long a daemon may take to answer a shim (a handshake, a ping) before the shim calls it stuck. */
export function livenessMs(env: NodeJS.ProcessEnv = process.env): number {
  const ms = Number(env.RERANK_DAEMON_LIVENESS_MS);
  return Number.isFinite(ms) && ms >= 100 ? ms : 10_000;
}

export interface DaemonPaths {
  dir: string;
  /** Where shims connect: a second name of the socket of the daemon that serves this key now. */
  socket: string;
  lock: string;
  log: string;
}

/** The longest pid on Linux (pid_max is at most 2^22). */
const MAX_PID_DIGITS = 7;

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
  // The longest name is a daemon's own socket, d-<key>-<pid>.sock.
  const longest = Buffer.byteLength(socket) + 1 + MAX_PID_DIGITS;
  if (process.platform !== 'win32' && longest > MAX_SOCKET_PATH) {
    throw new DaemonUnavailable(`the daemon socket path ${socket} (${Buffer.byteLength(socket)} bytes, ${longest} with a daemon's pid) is over the ${MAX_SOCKET_PATH}-byte limit of Unix sockets: set RERANK_DAEMON_DIR to a shorter directory`);
  }
  return { dir, socket, lock: `${base}.lock`, log: `${base}.log` };
}

/**
 * The socket a daemon binds and owns, d-<key>-<pid>.sock: only its own process ever removes it
 * (Node removes it when the server closes). The key's name, d-<key>.sock, is a hard link to the
 * one that serves.
 */
export function ownSocket(paths: DaemonPaths, pid: number): string {
  return `${paths.socket.slice(0, -'.sock'.length)}-${pid}.sock`;
}

export interface DaemonSocket {
  socket: string;
  key: string;
  /** The daemon that owns it, from its name; undefined for a key's name that links to no daemon's own socket. */
  pid?: number;
}

/**
 * One socket per daemon in `dir`: each daemon's own socket, and a key's name that is no link to
 * one of those (a stale file, or a daemon of an older release). On Windows: the pipes that the
 * log files name.
 */
export function daemonSockets(dir: string): DaemonSocket[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  if (process.platform === 'win32') {
    return names.flatMap((n) => (/^d-[0-9a-f]{16}\.log$/.test(n) ? [{ socket: daemonPaths(dir, n.slice(2, 18)).socket, key: n.slice(2, 18) }] : []));
  }
  const inode = (file: string) => {
    try {
      const st = lstatSync(file);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  };
  const own: DaemonSocket[] = [];
  const keyed: DaemonSocket[] = [];
  for (const n of names) {
    const m = /^d-([0-9a-f]{16})(?:-(\d+))?\.sock$/.exec(n);
    if (!m) continue;
    (m[2] ? own : keyed).push({ socket: path.join(dir, n), key: m[1], ...(m[2] ? { pid: Number(m[2]) } : {}) });
  }
  const owned = new Set(own.map((s) => inode(s.socket)));
  return [...own, ...keyed.filter((s) => !owned.has(inode(s.socket)))];
}

/** Whether a process `pid` runs (one of another user counts; a zombie, dead and not yet reaped, does not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop() ?? '');
  } catch {
    return true; // no /proc (macOS)
  }
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
  /** Whether the key's socket leads to this daemon, i.e. whether new clients of its configuration reach it. */
  current: boolean;
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
