/**
 * Streamable HTTP on /mcp with stateful sessions: an initialize request opens a session,
 * later requests name it in Mcp-Session-Id. GET /healthz answers without a session.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createRerankServer, type ServerContext } from '../mcp/server.js';
import { log } from '../log.js';
import { bearerToken, hasBearerToken, isLoopbackHost, localOnly, tokenProblem } from './http-guards.js';
import { cancelOnDisconnect } from './cancel-on-disconnect.js';
import { handleStatelessPost, statelessNotAllowed } from './stateless.js';
import { restRoutes } from '../rest/routes.js';

export interface HttpOptions {
  host: string;
  port: number;
  token?: string;
  /** Largest JSON body accepted, in bytes; larger ones get 413. */
  maxBodyBytes: number;
  /** A session with no request for this long, and no call in flight, is closed. */
  sessionIdleMs: number;
  /** Sessions open at once; one more initialize gets 503. */
  maxSessions: number;
  /** Host names (lower case, no port) accepted in Host and Origin besides loopback and the bind address. */
  allowedHosts?: readonly string[];
  /** No sessions: every POST is answered on its own, by whichever replica gets it. */
  stateless?: boolean;
}

export interface RunningHttpServer {
  server: Server;
  url: string;
  stopListening(): void;
  close(): Promise<void>;
}

export async function serveHttp(ctx: ServerContext, options: HttpOptions): Promise<RunningHttpServer> {
  if (!isLoopbackHost(options.host)) {
    if (!options.token) throw new Error(`refusing to listen on ${options.host} without a token: set RERANK_MCP_TOKEN, or bind 127.0.0.1`);
    const problem = tokenProblem(options.token);
    if (problem) throw new Error(`refusing to listen on ${options.host} with a weak token: RERANK_MCP_TOKEN ${problem}`);
  }
  const app = express();
  app.disable('x-powered-by');
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const lastSeen = new Map<string, number>();
  /** POST requests (calls) under way per session: a session with any is never idle. */
  const busy = new Map<string, number>();
  /** Initialize requests admitted whose session is not registered yet. */
  let opening = 0;
  // Clients that vanish without DELETE would otherwise keep their sessions forever.
  const reapEveryMs = Math.min(options.sessionIdleMs, 60_000);
  app.use(localOnly([...(isLoopbackHost(options.host) ? [] : [options.host]), ...(options.allowedHosts ?? [])]));
  // Counts are for those who may use the server; anyone who can reach it learns only that it is up.
  app.get('/healthz', (req, res) => {
    if (options.token && !hasBearerToken(req, options.token)) {
      res.json({ status: 'ok' });
      return;
    }
    res.json({ status: 'ok', model_loaded: ctx.host.loaded, sessions: sessions.size, max_sessions: options.maxSessions, calls_in_flight: ctx.inFlight.size });
  });
  // The REST face checks the token and parses bodies itself, to answer in its own error shape.
  const token = options.token;
  app.use(restRoutes(ctx, { authorized: token ? (req) => hasBearerToken(req, token) : undefined, maxBodyBytes: options.maxBodyBytes, maxConcurrent: options.maxSessions }));
  if (options.token) app.use(bearerToken(options.token));
  app.use(express.json({ limit: options.maxBodyBytes }));

  const forget = (id: string) => {
    sessions.delete(id);
    lastSeen.delete(id);
    busy.delete(id);
  };
  /** Closes the sessions idle past the limit; a session with a call in flight is left alone, whatever the others do. */
  const reapIdle = () => {
    const now = Date.now();
    for (const [id, seen] of lastSeen) {
      if (now - seen < options.sessionIdleMs || (busy.get(id) ?? 0) > 0) continue;
      log(`closing HTTP session ${id.slice(0, 8)}…, idle for ${Math.round((now - seen) / 1000)} s`);
      const transport = sessions.get(id);
      forget(id);
      void transport?.close().catch(() => undefined);
    }
  };
  /** Seconds until the first session could be reaped (or the idle limit, when all are busy). */
  const secondsUntilFreeSlot = () => {
    const now = Date.now();
    let soonest = options.sessionIdleMs;
    for (const [id, seen] of lastSeen) if (!(busy.get(id) ?? 0)) soonest = Math.min(soonest, seen + options.sessionIdleMs - now);
    return Math.max(1, Math.ceil((soonest + reapEveryMs) / 1000));
  };

  app.post('/mcp', async (req: Request, res: Response) => {
    if (options.stateless) {
      await handleStatelessPost(ctx, req, res);
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (existing) {
      const id = sessionId as string;
      lastSeen.set(id, Date.now());
      busy.set(id, (busy.get(id) ?? 0) + 1);
      // 'close' fires once the answer is sent or the client hangs up, whichever comes first.
      res.once('close', () => {
        if (!sessions.has(id)) return;
        busy.set(id, (busy.get(id) ?? 1) - 1);
        lastSeen.set(id, Date.now());
      });
      cancelOnDisconnect(existing, req.body, res);
      await existing.handleRequest(req, res, req.body);
      return;
    }
    if (sessionId !== undefined || !isInitializeRequest(req.body)) {
      res.status(sessionId !== undefined ? 404 : 400).json({
        jsonrpc: '2.0',
        error: { code: -32000, message: sessionId !== undefined ? 'unknown or expired session' : 'no session: send an initialize request first' },
        id: null,
      });
      return;
    }
    if (sessions.size + opening >= options.maxSessions) reapIdle();
    if (sessions.size + opening >= options.maxSessions) {
      const retry = secondsUntilFreeSlot();
      log(`refused a new HTTP session: ${options.maxSessions} open (--max-sessions)`);
      res.setHeader('Retry-After', String(retry));
      res.status(503).json({
        jsonrpc: '2.0',
        error: { code: -32000, message: `too many sessions: ${options.maxSessions} are open (--max-sessions); retry in ${retry} s, or close an unused client` },
        id: (req.body as { id?: unknown }).id ?? null,
      });
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
        lastSeen.set(id, Date.now());
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) forget(transport.sessionId);
    };
    opening++;
    try {
      const server = createRerankServer(ctx);
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } finally {
      opening--;
    }
  });

  const bySession = async (req: Request, res: Response) => {
    const sessionId = req.headers['mcp-session-id'];
    const transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (transport) lastSeen.set(sessionId as string, Date.now());
    if (!transport) {
      res.status(sessionId === undefined ? 400 : 404).json({ jsonrpc: '2.0', error: { code: -32000, message: 'unknown or missing Mcp-Session-Id' }, id: null });
      return;
    }
    await transport.handleRequest(req, res);
  };
  app.get('/mcp', options.stateless ? statelessNotAllowed : bySession);
  app.delete('/mcp', options.stateless ? statelessNotAllowed : bySession);

  // body-parser reports oversized and malformed bodies as errors with a status; answer them as JSON.
  app.use((err: Error & { status?: number; type?: string; length?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status ?? 500;
    if (status >= 500) log(`HTTP error: ${err.stack ?? err.message}`);
    const message =
      status === 413
        ? `request body${err.length ? ` of ${(err.length / 1024 / 1024).toFixed(1)} MiB` : ''} is over the limit of ${(options.maxBodyBytes / 1024 / 1024).toFixed(0)} MiB (--max-body-mb, RERANK_MAX_BODY_MB)`
        : err.message;
    if (status === 413) log(message);
    res.status(status).json({ jsonrpc: '2.0', error: { code: status === 413 ? -32600 : -32700, message }, id: null });
  });

  const reaper = setInterval(reapIdle, reapEveryMs);
  reaper.unref();

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${hostForUrl}:${port}/mcp`;
  log(`serving MCP over Streamable HTTP at ${url}${options.stateless ? ' (stateless)' : ''}${options.token ? ' (bearer token required)' : ''}; REST rerank API at /v1/rerank, /v2/rerank, /rerank, /v1/feedback`);
  return {
    server,
    url,
    /** Stops accepting connections; requests already received still get their answers. */
    stopListening() {
      clearInterval(reaper);
      server.close();
      server.closeIdleConnections();
    },
    async close() {
      clearInterval(reaper);
      await Promise.all([...sessions.values()].map((t) => t.close().catch(() => undefined)));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
