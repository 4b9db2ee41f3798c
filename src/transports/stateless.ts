/**
 * Stateless Streamable HTTP (--stateless): no Mcp-Session-Id, each POST is answered on its own
 * by a server made for it, so any replica behind a load balancer can take any request. Nothing
 * is lost: the tools never call back into the client, progress notifications still stream on
 * the POST's own SSE response, and rerank_ids live in the shared store, not in a session.
 * There is no standalone stream to open and no session to end, so GET and DELETE get 405.
 */
import type { Request, Response } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { ServerContext } from '../api/context.js';
import { createRerankServer } from '../mcp/server.js';
import { cancelOnDisconnect } from './cancel-on-disconnect.js';

export async function handleStatelessPost(ctx: ServerContext, req: Request, res: Response): Promise<void> {
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  const server = createRerankServer(ctx, 'http');
  res.once('close', () => {
    void transport.close().catch(() => undefined);
    void server.close().catch(() => undefined);
  });
  await server.connect(transport);
  cancelOnDisconnect(transport, req.body, res);
  await transport.handleRequest(req, res, req.body);
}

export function statelessNotAllowed(req: Request, res: Response): void {
  res.setHeader('Allow', 'POST');
  res.status(405).json({
    jsonrpc: '2.0',
    error: { code: -32000, message: `${req.method} /mcp is not available: this server is stateless (--stateless), send each request as a POST` },
    id: null,
  });
}
