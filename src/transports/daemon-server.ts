/**
 * The shared daemon's socket: one MCP server per attached shim (each client keeps its own
 * session, clientInfo, progress and cancellation) over the one engine, score cache and feedback
 * store of this process. Control connections ask for the status or stop the daemon.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, linkSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { SharedEngine } from '../commands/serve.js';
import { log } from '../log.js';
import { watch } from '../observability/index.js';
import { PACKAGE_VERSION } from '../version.js';
import { serveStdio } from './stdio.js';
import { controlDaemon, DAEMON_PROTOCOL, daemonSockets, ownSocket, processAlive, readLine, type DaemonPaths, type DaemonStatus, type Hello } from './daemon-common.js';

export interface DaemonServerOptions {
  paths: DaemonPaths;
  key: string;
  idleMs: number;
  maxLineBytes: number;
  engine: SharedEngine;
  modelName: string;
}

/** How long a connection may take to say what it wants. */
const HELLO_TIMEOUT_MS = 10_000;

export async function runDaemonServer({ paths, key, idleMs, maxLineBytes, engine, modelName }: DaemonServerOptions): Promise<void> {
  const started = Date.now();
  const sessions = new Map<Socket, McpServer | undefined>();
  let idleTimer: NodeJS.Timeout | undefined;
  let stopping = false;
  let ownsKeySocket = () => true;
  watch({ sessions: () => sessions.size, daemonClients: () => sessions.size });

  const status = (): DaemonStatus => ({
    pid: process.pid,
    version: PACKAGE_VERSION,
    key,
    clients: sessions.size,
    models: [modelName],
    uptime_s: Math.round((Date.now() - started) / 1000),
    socket: paths.socket,
    current: ownsKeySocket(),
  });

  const armIdle = () => {
    clearTimeout(idleTimer);
    if (sessions.size > 0 || stopping) return;
    // Another daemon took the key's socket over while this one was stopped or hung: no new client can reach this one.
    if (!ownsKeySocket()) return void shutdown('another daemon serves this configuration now');
    idleTimer = setTimeout(() => void shutdown(`no client for ${Math.round(idleMs / 1000)} s`), idleMs);
  };

  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    clearTimeout(idleTimer);
    log(`${why}: stopping the daemon`);
    // New shims find no socket from here on and start a fresh daemon; calls under way still finish.
    // The key's name goes only while it is still this daemon's: after a takeover it is another's.
    if (ownsKeySocket()) unlinkQuietly(paths.socket);
    server.close(); // removes this daemon's own socket
    await engine.drainAndClose(why);
    for (const socket of sessions.keys()) socket.destroy();
    log(`${why}: exiting`);
    process.exit(0);
  };

  const attach = async (socket: Socket) => {
    sessions.set(socket, undefined);
    armIdle();
    socket.write(JSON.stringify({ rerank_daemon: DAEMON_PROTOCOL, ok: true, pid: process.pid, version: PACKAGE_VERSION, key }) + '\n');
    const mcp = await serveStdio(
      engine.ctx,
      maxLineBytes,
      {
        onInitialized: () => void engine.startLoading(),
        onEnd: () => socket.end(),
      },
      { input: socket, output: socket },
      'daemon',
    );
    if (sessions.has(socket)) sessions.set(socket, mcp);
    else void mcp.close();
  };

  const onConnection = async (socket: Socket) => {
    socket.on('error', () => undefined); // a shim that vanished: its 'close' cleans up
    socket.once('close', () => {
      const mcp = sessions.get(socket);
      if (!sessions.delete(socket)) return;
      // Closing the session aborts its calls under way: nobody is left to read their answers.
      void mcp?.close();
      armIdle();
    });
    let hello: Hello;
    try {
      hello = JSON.parse(await readLine(socket, HELLO_TIMEOUT_MS)) as Hello;
    } catch {
      socket.destroy();
      return;
    }
    const answer = (reply: object) => socket.end(JSON.stringify({ rerank_daemon: DAEMON_PROTOCOL, ...reply }) + '\n');
    if (stopping) return answer({ ok: false, reason: 'the daemon is stopping' });
    if (hello.op === 'status') return answer({ ok: true, ...status() });
    if (hello.op === 'reload') {
      // A shim passes on the SIGHUP its client sent: the one shared model reloads for every client.
      answer({ ok: true, ...status() });
      return void engine.host.reload('SIGHUP').catch(() => undefined);
    }
    if (hello.op === 'stop') {
      answer({ ok: true, ...status(), stopping: true });
      return void shutdown('daemon stop');
    }
    if (hello.op !== 'attach' || hello.rerank_daemon !== DAEMON_PROTOCOL || hello.key !== key || hello.version !== PACKAGE_VERSION) {
      return answer({ ok: false, reason: `this daemon serves rerank-mcp ${PACKAGE_VERSION} with configuration ${key}; asked for ${hello.version} with ${hello.key}` });
    }
    await attach(socket);
  };

  const server: Server = createServer((socket) => void onConnection(socket));
  ownsKeySocket = await bindSocket(server, paths);
  log(`daemon ${process.pid} listening on ${paths.socket} (rerank-mcp ${PACKAGE_VERSION}, model ${modelName}, idle exit after ${Math.round(idleMs / 1000)} s)`);
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  armIdle();
}

/**
 * Binds this daemon's own socket, then gives it the key's name, which shims connect to, and
 * returns whether that name still leads here. The name is taken with link(), which fails when it
 * exists; an existing one that answers belongs to a daemon started a moment earlier, and this one
 * leaves. One that answers nobody (a killed daemon's, or a stopped or hung one's) is replaced with
 * rename(), in one step: no daemon ever unlinks a name that leads to another's socket.
 */
async function bindSocket(server: Server, paths: DaemonPaths): Promise<() => boolean> {
  const listen = (where: string) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(where, () => {
        server.off('error', reject);
        resolve();
      });
    });
  if (process.platform === 'win32') {
    await listen(paths.socket); // a named pipe: the system removes it with its last handle
    return () => true;
  }
  const own = ownSocket(paths, process.pid);
  unlinkQuietly(own); // left by a killed daemon that had this pid
  await listen(own);
  chmodSync(own, 0o600);
  const { dev, ino } = lstatSync(own);
  const ownsKeySocket = () => {
    try {
      const st = lstatSync(paths.socket);
      return st.dev === dev && st.ino === ino;
    } catch {
      return false;
    }
  };
  // Own sockets of killed daemons of this key: their processes are gone, so nobody else removes them.
  for (const s of daemonSockets(paths.dir)) {
    if (s.pid !== undefined && s.pid !== process.pid && s.socket.startsWith(paths.socket.slice(0, -'.sock'.length) + '-') && !processAlive(s.pid)) unlinkQuietly(s.socket);
  }
  try {
    linkSync(own, paths.socket);
    return ownsKeySocket;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const other = await controlDaemon(paths.socket, 'status', 2000);
  if (other?.ok) {
    log(`daemon ${other.pid} already serves ${paths.socket}: exiting`);
    server.close();
    process.exit(0);
  }
  const next = `${own}.new`;
  unlinkQuietly(next);
  linkSync(own, next);
  renameSync(next, paths.socket);
  log(`${paths.socket} ${other ? 'led to a daemon that is stopping' : 'answered nobody within 2 s'}: took it over`);
  return ownsKeySocket;
}

function unlinkQuietly(file: string): void {
  if (process.platform === 'win32') return;
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}
