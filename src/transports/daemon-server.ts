/**
 * The shared daemon's socket: one MCP server per attached shim (each client keeps its own
 * session, clientInfo, progress and cancellation) over the one engine, score cache and feedback
 * store of this process. Control connections ask for the status or stop the daemon.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { SharedEngine } from '../commands/serve.js';
import { log } from '../log.js';
import { watch } from '../observability/index.js';
import { PACKAGE_VERSION } from '../version.js';
import { serveStdio } from './stdio.js';
import { controlDaemon, DAEMON_PROTOCOL, readLine, type DaemonPaths, type DaemonStatus, type Hello } from './daemon-common.js';

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
  watch({ sessions: () => sessions.size, daemonClients: () => sessions.size });

  const status = (): DaemonStatus => ({
    pid: process.pid,
    version: PACKAGE_VERSION,
    key,
    clients: sessions.size,
    models: [modelName],
    uptime_s: Math.round((Date.now() - started) / 1000),
    socket: paths.socket,
  });

  const armIdle = () => {
    clearTimeout(idleTimer);
    if (sessions.size > 0 || stopping) return;
    idleTimer = setTimeout(() => void shutdown(`no client for ${Math.round(idleMs / 1000)} s`), idleMs);
  };

  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    clearTimeout(idleTimer);
    log(`${why}: stopping the daemon`);
    // New shims find no socket from here on (closing removes it) and start a fresh daemon; calls under way still finish.
    server.close();
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
  await listenOnce(server, paths.socket);
  if (process.platform !== 'win32') chmodSync(paths.socket, 0o600);
  log(`daemon ${process.pid} listening on ${paths.socket} (rerank-mcp ${PACKAGE_VERSION}, model ${modelName}, idle exit after ${Math.round(idleMs / 1000)} s)`);
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  armIdle();
}

/**
 * Binds the socket. A socket file left by a daemon that was killed answers nobody and is
 * replaced; one that answers belongs to a daemon started a moment earlier, and this one leaves.
 */
async function listenOnce(server: Server, socketPath: string): Promise<void> {
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    if (await controlDaemon(socketPath, 'status', 2000)) {
      log(`another daemon already serves ${socketPath}: exiting`);
      process.exit(0);
    }
    unlinkQuietly(socketPath);
    await listen();
  }
}

function unlinkQuietly(file: string): void {
  if (process.platform === 'win32') return;
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}
