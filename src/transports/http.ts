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
import { bearerToken, isLoopbackHost, localOnly } from './http-guards.js';
import { cancelOnDisconnect } from './cancel-on-disconnect.js';

export interface HttpOptions {
  host: string;
  port: number;
  token?: string;
  /** Largest JSON body accepted, in bytes; larger ones get 413. */
  maxBodyBytes: number;
  /** A session with no request for this long is closed. */
  sessionIdleMs: number;
}

export interface RunningHttpServer {
  server: Server;
  url: string;
  stopListening(): void;
  close(): Promise<void>;
}

export async function serveHttp(ctx: ServerContext, options: HttpOptions): Promise<RunningHttpServer> {
  if (!isLoopbackHost(options.host) && !options.token) {
    throw new Error(`refusing to listen on ${options.host} without a token: set RERANK_MCP_TOKEN, or bind 127.0.0.1`);
  }
  const app = express();
  app.disable('x-powered-by');
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const lastSeen = new Map<string, number>();
  app.use(localOnly(isLoopbackHost(options.host) ? [] : [options.host]));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', model_loaded: ctx.host.loaded, sessions: sessions.size });
  });
  if (options.token) app.use(bearerToken(options.token));
  app.use(express.json({ limit: options.maxBodyBytes }));

  app.post('/mcp', async (req: Request, res: Response) => {
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (existing) {
      lastSeen.set(sessionId as string, Date.now());
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
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
        lastSeen.set(id, Date.now());
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) {
        sessions.delete(transport.sessionId);
        lastSeen.delete(transport.sessionId);
      }
    };
    const server = createRerankServer(ctx);
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
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
  app.get('/mcp', bySession);
  app.delete('/mcp', bySession);

  // body-parser reports oversized and malformed bodies as errors with a status; answer them as JSON.
  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status ?? 500;
    if (status >= 500) log(`HTTP error: ${err.stack ?? err.message}`);
    res.status(status).json({ jsonrpc: '2.0', error: { code: status === 413 ? -32600 : -32700, message: err.message }, id: null });
  });

  // Clients that vanish without DELETE would otherwise keep their sessions forever.
  const reaper = setInterval(() => {
    const cutoff = Date.now() - options.sessionIdleMs;
    for (const [id, seen] of lastSeen) {
      if (seen < cutoff && !ctx.inFlight.size) {
        log(`closing HTTP session ${id.slice(0, 8)}…, idle for ${Math.round((Date.now() - seen) / 1000)} s`);
        void sessions.get(id)?.close();
        sessions.delete(id);
        lastSeen.delete(id);
      }
    }
  }, Math.min(options.sessionIdleMs, 60_000));
  reaper.unref();

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${hostForUrl}:${port}/mcp`;
  log(`serving MCP over Streamable HTTP at ${url}${options.token ? ' (bearer token required)' : ''}`);
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
