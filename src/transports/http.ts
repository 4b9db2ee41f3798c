/**
 * Streamable HTTP on /mcp with stateful sessions: an initialize request opens a session,
 * later requests name it in Mcp-Session-Id. GET /healthz answers without a session.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { EngineHost } from '../engine/engine-host.js';
import type { FeedbackService } from '../feedback/feedback-service.js';
import { createRerankServer } from '../mcp/server.js';
import { log } from '../log.js';
import { bearerToken, isLoopbackHost, localOnly } from './http-guards.js';

export interface HttpOptions {
  host: string;
  port: number;
  token?: string;
  /** Largest JSON body accepted; larger ones get 413. */
  bodyLimit?: string;
}

export interface RunningHttpServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function serveHttp(host: EngineHost, feedback: FeedbackService, options: HttpOptions): Promise<RunningHttpServer> {
  if (!isLoopbackHost(options.host) && !options.token) {
    throw new Error(`refusing to listen on ${options.host} without a token: set RERANK_MCP_TOKEN, or bind 127.0.0.1`);
  }
  const app = express();
  app.disable('x-powered-by');
  app.use(localOnly(isLoopbackHost(options.host) ? [] : [options.host]));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', model_loaded: host.loaded });
  });
  if (options.token) app.use(bearerToken(options.token));
  app.use(express.json({ limit: options.bodyLimit ?? '64mb' }));

  const sessions = new Map<string, StreamableHTTPServerTransport>();

  app.post('/mcp', async (req: Request, res: Response) => {
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (existing) {
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
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const server = createRerankServer(host, feedback);
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

  const bySession = async (req: Request, res: Response) => {
    const sessionId = req.headers['mcp-session-id'];
    const transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
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

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host, () => resolve(s));
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
    async close() {
      await Promise.all([...sessions.values()].map((t) => t.close().catch(() => undefined)));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
