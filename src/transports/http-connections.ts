/**
 * Connections to the HTTP server, bounded below the process's file-descriptor limit.
 *
 * Without a cap, clients that open connections and send nothing (or keep-alive connections left
 * open by pooling clients) take every descriptor: accept() then fails with EMFILE, every other
 * client is locked out until Node's header timeout (60 s, checked every 30 s) reaps them, and
 * the model, tokenizer workers and SQLite cannot open their files either. So: a cap with room
 * left for files, the idle connection that has waited longest closed to admit a new one, and
 * header and request timeouts short enough to reap slow clients within seconds.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { log } from '../log.js';

/** A client that has not sent its request headers by then is disconnected (Node's default: 60 s). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** The whole request, body included (Node's default: 300 s); 128 MiB needs ~2 MB/s to arrive in time. */
export const REQUEST_TIMEOUT_MS = 60_000;
/** How often Node checks those two timeouts (its default, 30 s, lets a reaped client linger that long). */
const TIMEOUT_CHECK_MS = 1_000;
/** Options for createServer: the timeouts above (Node reads the checking interval only there). */
export const SERVER_TIMEOUTS = { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: TIMEOUT_CHECK_MS } as const;

/** Descriptors kept for everything but connections: model files, workers, the database, logs. */
const RESERVED_FDS = 128;
/** Connections the default cap never goes beyond, however high the descriptor limit. */
const DEFAULT_CAP_CEILING = 4096;

/** The soft RLIMIT_NOFILE, where the system tells it (Linux /proc); undefined elsewhere. */
export function openFileLimit(): number | undefined {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!match) return undefined;
    return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
  } catch {
    return undefined;
  }
}

/**
 * The default cap: the descriptor limit less a reserve (a quarter of it when that is more), at
 * most DEFAULT_CAP_CEILING; 1024 less the reserve where the limit cannot be read (the common
 * default soft limit).
 */
export function defaultMaxConnections(limit = openFileLimit()): number {
  const fds = limit ?? 1024;
  const reserve = Math.max(RESERVED_FDS, Math.floor(fds / 4));
  return Math.max(8, Math.min(DEFAULT_CAP_CEILING, fds - reserve));
}

interface Tracked {
  /** When its last request ended, or when it connected; undefined while a request is in progress. */
  idleSince: number | undefined;
}

/**
 * Applies the cap to `server` (created with SERVER_TIMEOUTS). At the cap, a new connection closes the
 * connection idle the longest (no request in progress: never sent one, or a keep-alive between
 * requests); a connection whose request is under way is never closed for another. When every
 * connection is busy, the new one is closed at once, which a client sees as a reset it can retry.
 */
export function limitConnections(server: Server, maxConnections: number): void {
  const open = new Map<Socket, Tracked>();
  let refusedSince = 0;
  let refused = 0;

  const oldestIdle = (): Socket | undefined => {
    let found: Socket | undefined;
    let since = Number.POSITIVE_INFINITY;
    for (const [socket, state] of open) {
      if (state.idleSince !== undefined && state.idleSince < since) {
        since = state.idleSince;
        found = socket;
      }
    }
    return found;
  };

  server.on('connection', (socket: Socket) => {
    if (open.size >= maxConnections) {
      const idle = oldestIdle();
      if (idle) {
        open.delete(idle);
        idle.destroy();
      } else {
        // One line per burst, not one per refused connection.
        refused++;
        if (Date.now() - refusedSince > 10_000) {
          log(`refused ${refused} HTTP connection(s): all ${maxConnections} open connections (--max-connections, RERANK_MAX_CONNECTIONS) have a request in progress`);
          refusedSince = Date.now();
          refused = 0;
        }
        socket.destroy();
        return;
      }
    }
    open.set(socket, { idleSince: Date.now() });
    socket.once('close', () => open.delete(socket));
  });

  server.on('request', (req, res) => {
    const state = open.get(req.socket);
    if (!state) return;
    state.idleSince = undefined;
    res.once('close', () => (state.idleSince = Date.now()));
  });
}
