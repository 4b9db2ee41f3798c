/**
 * Streamable HTTP on /mcp with stateful sessions: an initialize request opens a session,
 * later requests name it in Mcp-Session-Id. GET /healthz and /readyz answer without a session
 * (health.ts).
 *
 * Layout: the health routes first (any Host), then one router that carries the guards every
 * other endpoint needs (Host/Origin, bearer token, body limit); endpoints are mounted on that
 * router, so one added later gets the same checks.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createRerankServer, watchRequests, type ServerContext } from '../mcp/server.js';
import { log } from '../log.js';
import { watch } from '../observability/index.js';
import { bearerToken, cors, hasBearerToken, isLoopbackHost, localOnly, tokenProblem } from './http-guards.js';
import { cancelOnDisconnect } from './cancel-on-disconnect.js';
import { mountHealth } from './health.js';
import { handleStatelessPost, statelessNotAllowed } from './stateless.js';
import { restNotFound, restRefusal, restRoutes } from '../rest/routes.js';
import { Session } from './http-sessions.js';
import { defaultMaxConnections, limitConnections, SERVER_TIMEOUTS } from './http-connections.js';
import { jsonBody } from './json-body.js';
import { InFlightIds, INVALID_REQUEST, checkMessage, duplicateReply, isRequest, type ErrorReply } from './jsonrpc-check.js';

export interface HttpOptions {
  host: string;
  port: number;
  token?: string;
  /** Largest JSON body accepted, in bytes; larger ones get 413. */
  maxBodyBytes: number;
  /** A session with no request for this long, and no call in flight, is closed. */
  sessionIdleMs: number;
  /** Sessions open at once; at the cap the least recently used idle one is closed for a new one, and only when all are busy does an initialize get 503. */
  maxSessions: number;
  /** Host names (lower case, no port) accepted in Host and Origin besides loopback and the bind address. */
  allowedHosts?: readonly string[];
  /** Origins (normalized, see corsOriginList) whose browser pages may call: CORS headers, preflights answered without the token. */
  corsOrigins?: readonly string[];
  /** No sessions: every POST is answered on its own, by whichever replica gets it. */
  stateless?: boolean;
  /** Connections open at once (see http-connections.ts); 0 or absent: derived from the descriptor limit. */
  maxConnections?: number;
}

export interface RunningHttpServer {
  server: Server;
  url: string;
  stopListening(): void;
  close(): Promise<void>;
}

/** A refused initialize's Retry-After when every session is busy: calls usually end within seconds. */
const BUSY_RETRY_SECONDS = 5;

export async function serveHttp(ctx: ServerContext, options: HttpOptions): Promise<RunningHttpServer> {
  if (!isLoopbackHost(options.host)) {
    if (!options.token) throw new Error(`refusing to listen on ${options.host} without a token: set RERANK_MCP_TOKEN, or bind 127.0.0.1`);
    const problem = tokenProblem(options.token);
    if (problem) throw new Error(`refusing to listen on ${options.host} with a weak token: RERANK_MCP_TOKEN ${problem}`);
  }
  const app = express();
  app.disable('x-powered-by');
  // An ETag is a SHA-1 of the whole answer on the event loop (~0.2 s for 95 MB), and no client revalidates a POST.
  app.set('etag', false);
  const sessions = new Map<string, Session>();
  /** Initialize requests admitted whose session is not registered yet. */
  let opening = 0;
  // Clients that vanish without DELETE would otherwise keep their sessions forever.
  const reapEveryMs = Math.min(options.sessionIdleMs, 60_000);
  const allowedHosts = [...(isLoopbackHost(options.host) ? [] : [options.host]), ...(options.allowedHosts ?? [])];
  watch({ sessions: () => sessions.size });

  mountHealth(app, {
    token: options.token,
    allowedHosts,
    details: () => ({ model_loaded: ctx.host.loaded, sessions: sessions.size, max_sessions: options.maxSessions, calls_in_flight: ctx.inFlight.size }),
    notReady: async () => {
      const problems: Record<string, string> = {};
      if (!ctx.host.loaded) problems.model = ctx.host.state === 'failed' ? (ctx.host.error ?? 'failed to load') : `not loaded yet (${ctx.host.state})`;
      const store = await ctx.feedback.reachable();
      if (store !== undefined) problems.store = store;
      return problems;
    },
  });

  /** Everything but health: Host/Origin checks, the token, the body limit. Endpoints are mounted here. */
  const guarded = express.Router();
  guarded.use(localOnly(allowedHosts, options.corsOrigins, restRefusal));
  guarded.use(cors(options.corsOrigins ?? []));
  // The REST face checks the same token and parses bodies itself, to answer in its own error shape.
  const token = options.token;
  const parseJson = jsonBody(options.maxBodyBytes);
  guarded.use(restRoutes(ctx, { authorized: token ? (req) => hasBearerToken(req, token) : undefined, maxBodyBytes: options.maxBodyBytes, maxConcurrent: options.maxSessions, parseJson }));
  if (options.token) guarded.use(bearerToken(options.token));
  guarded.use(parseJson);
  app.use(guarded);

  const closeSession = (id: string, why: string) => {
    log(`closing HTTP session ${id.slice(0, 8)}…, ${why}`);
    const session = sessions.get(id);
    sessions.delete(id);
    void session?.transport.close().catch(() => undefined);
  };
  /** Closes the sessions idle past the limit; a session with a call in flight is left alone, whatever the others do. */
  const reapIdle = () => {
    const now = Date.now();
    for (const [id, session] of sessions) {
      if (now - session.lastSeen < options.sessionIdleMs || session.busy) continue;
      closeSession(id, `idle for ${Math.round((now - session.lastSeen) / 1000)} s`);
    }
  };
  /**
   * At the cap, the session that has waited longest since its last request and has nothing in
   * flight makes room: an idle client (even one that pings) must not lock a new one out. Its
   * client gets 404 on its next request and, as the spec has it, starts a new session.
   */
  const evictLeastRecentlyUsed = (): boolean => {
    let oldest: [string, Session] | undefined;
    for (const entry of sessions) if (!entry[1].busy && (!oldest || entry[1].lastSeen < oldest[1].lastSeen)) oldest = entry;
    if (!oldest) return false;
    closeSession(oldest[0], `the least recently used (last request ${Math.round((Date.now() - oldest[1].lastSeen) / 1000)} s ago), to admit a new client: ${options.maxSessions} open (--max-sessions)`);
    return true;
  };

  /**
   * Checks each message of a POST body (see jsonrpc-check.ts) and the ids against those still in
   * flight in the session. Returns the ids of the requests it carries, or undefined when it has
   * answered the POST with a refusal.
   */
  const admitMessages = (req: Request, res: Response, session: Session | undefined): (string | number)[] | undefined => {
    const body: unknown = req.body;
    if (body === undefined) return []; // not JSON: the SDK transport answers it
    const messages = Array.isArray(body) ? body : [body];
    const replies: ErrorReply[] = [];
    const seen = new InFlightIds();
    const ids: (string | number)[] = [];
    for (const value of messages) {
      const checked = checkMessage(value);
      if (!checked.ok) {
        log(checked.log);
        replies.push(checked.reply ?? { jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: `Invalid Request: ${checked.log}` } });
        continue;
      }
      const message = checked.message;
      if (!isRequest(message)) {
        const cancelled = 'method' in message && message.method === 'notifications/cancelled' ? (message.params as { requestId?: unknown } | undefined)?.requestId : undefined;
        if (session && (typeof cancelled === 'string' || typeof cancelled === 'number')) session.cancel(cancelled);
        continue;
      }
      if (session?.pending.has(message.id) || seen.has(message.id)) {
        const refused = duplicateReply(message.id, message.method);
        log(refused.log);
        replies.push(refused.reply);
      }
      seen.add(message.id);
      ids.push(message.id);
    }
    if (replies.length === 0) return ids;
    res.status(400).json(Array.isArray(body) ? replies : replies[0]);
    return undefined;
  };

  guarded.post('/mcp', async (req: Request, res: Response) => {
    if (options.stateless) {
      if (!admitMessages(req, res, undefined)) return;
      await handleStatelessPost(ctx, req, res);
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (existing) {
      const ids = admitMessages(req, res, existing);
      if (!ids) return;
      // 'close' fires once the answer is sent or the client hangs up, whichever comes first.
      res.once('close', existing.openPost(ids));
      cancelOnDisconnect(existing.transport, req.body, res);
      await existing.transport.handleRequest(req, res, req.body);
      return;
    }
    if (!admitMessages(req, res, undefined)) return;
    if (sessionId !== undefined || !isInitializeRequest(req.body)) {
      res.status(sessionId !== undefined ? 404 : 400).json({
        jsonrpc: '2.0',
        error: { code: -32000, message: sessionId !== undefined ? 'unknown or expired session' : 'no session: send an initialize request first' },
        id: null,
      });
      return;
    }
    if (sessions.size + opening >= options.maxSessions) reapIdle();
    if (sessions.size + opening >= options.maxSessions) evictLeastRecentlyUsed();
    if (sessions.size + opening >= options.maxSessions) {
      log(`refused a new HTTP session: all ${options.maxSessions} open sessions (--max-sessions) have a call in flight`);
      res.setHeader('Retry-After', String(BUSY_RETRY_SECONDS));
      res.status(503).json({
        jsonrpc: '2.0',
        error: { code: -32000, message: `too many sessions: ${options.maxSessions} are open (--max-sessions) and every one has a call in flight; retry in ${BUSY_RETRY_SECONDS} s` },
        id: (req.body as { id?: unknown }).id ?? null,
      });
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, new Session(transport));
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    opening++;
    try {
      const server = createRerankServer(ctx, 'http');
      watchRequests(server, (requestId) => {
        if (transport.sessionId) sessions.get(transport.sessionId)?.settled(requestId);
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } finally {
      opening--;
    }
  });

  const bySession = async (req: Request, res: Response) => {
    const sessionId = req.headers['mcp-session-id'];
    const session = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (session) session.lastSeen = Date.now();
    if (!session) {
      res.status(sessionId === undefined ? 400 : 404).json({ jsonrpc: '2.0', error: { code: -32000, message: 'unknown or missing Mcp-Session-Id' }, id: null });
      return;
    }
    await session.transport.handleRequest(req, res);
  };
  guarded.get('/mcp', options.stateless ? statelessNotAllowed : bySession);
  guarded.delete('/mcp', options.stateless ? statelessNotAllowed : bySession);
  // Mounted last: JSON that names the right base URL instead of Express's HTML page.
  guarded.use(restNotFound);

  // body-parser reports oversized and malformed bodies as errors with a status; answer them as JSON.
  app.use((err: Error & { status?: number; type?: string; length?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status ?? 500;
    if (status >= 500) log(`HTTP error: ${err.stack ?? err.message}`);
    const message =
      err.type === 'entity.too.large'
        ? `request body${err.length ? ` of ${(err.length / 1024 / 1024).toFixed(1)} MiB` : ''} is over the limit of ${(options.maxBodyBytes / 1024 / 1024).toFixed(0)} MiB (--max-body-mb, RERANK_MAX_BODY_MB)`
        : err.message;
    if (status === 413) log(message);
    res.status(status).json({ jsonrpc: '2.0', error: { code: status === 413 ? -32600 : -32700, message }, id: null });
  });

  const reaper = setInterval(reapIdle, reapEveryMs);
  reaper.unref();

  // Without requireHostHeader, an HTTP/1.1 probe with no Host reaches the health routes (and the 403 of the guards elsewhere) instead of Node's bare 400.
  const server = createServer({ requireHostHeader: false, ...SERVER_TIMEOUTS }, app);
  const maxConnections = options.maxConnections || defaultMaxConnections();
  limitConnections(server, maxConnections);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${hostForUrl}:${port}/mcp`;
  log(`serving MCP over Streamable HTTP at ${url}${options.stateless ? ' (stateless)' : ''}${options.token ? ' (bearer token required)' : ''}, at most ${maxConnections} connections; REST rerank API at /v1/rerank, /v2/rerank, /rerank, /info, /v1/feedback${options.corsOrigins?.length ? ` (CORS for ${options.corsOrigins.join(', ')})` : ''}`);
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
      await Promise.all([...sessions.values()].map((s) => s.transport.close().catch(() => undefined)));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
