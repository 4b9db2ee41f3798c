/**
 * Builds an MCP server over an engine, knowing nothing of transports: stdio makes one,
 * HTTP makes one per session.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { ServerContext } from '../api/context.js';
import { registerFeedbackTool } from './tools/feedback.js';
import { registerFeedbackStatsResource } from './feedback-stats-resource.js';
import { registerModelInfoTool } from './tools/model-info.js';
import { registerRerankTool } from './tools/rerank.js';
import { registerScorePairTool } from './tools/score-pair.js';
import { PACKAGE_VERSION } from '../version.js';
import { attachCall, beginCall, type FailureKind, type Transport } from '../observability/index.js';

export type { ServerContext };

/** `transport` labels the calls this server answers in metrics, logs and traces. */
export function createRerankServer(ctx: ServerContext, transport: Transport = 'stdio'): McpServer {
  const server = new McpServer(
    { name: 'rerank-mcp', version: PACKAGE_VERSION },
    {
      capabilities: { tools: {}, resources: {}, logging: {} },
      instructions:
        'Local cross-encoder reranker. After retrieving candidate passages, call rerank with the query and candidates to get them best first; ' +
        'use score_pair to judge single pairs; once you know which results were right, call feedback with the rerank_id so the model can learn; ' +
        'model_info tells which model is loaded; the resource feedback://stats summarizes recorded feedback.',
    },
  );
  registerRerankTool(server, ctx);
  registerScorePairTool(server, ctx);
  registerModelInfoTool(server, ctx);
  registerFeedbackTool(server, ctx);
  registerFeedbackStatsResource(server, ctx.feedback);
  recordToolCalls(server, ctx, transport);
  refuseUnknownTools(server);
  return server;
}

type RequestHandler = (
  request: { params?: { name?: unknown; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> } },
  extra: { requestId: string | number; sessionId?: string; signal: AbortSignal },
) => Promise<unknown>;

/** The SDK's handler map (private: its public API can replace a handler but not reach the one it installed). */
function requestHandlers(server: McpServer): Map<string, RequestHandler> {
  const handlers = (server.server as unknown as { _requestHandlers?: Map<string, RequestHandler> })._requestHandlers;
  if (!(handlers instanceof Map)) throw new Error('the MCP SDK no longer keeps its request handlers where rerank-mcp expects them: check src/mcp/server.ts against the installed @modelcontextprotocol/sdk');
  return handlers;
}

/**
 * Calls `settled(id)` when the handler of a request has finished, answered or not: a cancelled
 * request gets no answer, yet its id stays in use (the SDK keys the call's abort controller on
 * it) until the handler returns. Transports use this to refuse a second request with that id
 * meanwhile. Covers every handler registered so far, so call it once the server is built.
 */
export function watchRequests(server: McpServer, settled: (id: string | number) => void): void {
  const handlers = requestHandlers(server);
  for (const [method, handler] of handlers) {
    handlers.set(method, async (request, extra) => {
      try {
        return await handler(request, extra);
      } finally {
        settled(extra.requestId);
      }
    });
  }
}

/**
 * The MCP spec (server/tools, "Error Handling") lists an unknown tool among the protocol
 * errors: a JSON-RPC error -32602, not a result. The SDK's McpServer (1.32) catches its own
 * "Tool … not found" and turns it into an `isError` result, which clients then show to the model
 * as if a tool had run and failed. The tools/call handler is wrapped so that a name no tool has
 * is refused before the SDK sees it; known tools go through the SDK's handler unchanged.
 */
function refuseUnknownTools(server: McpServer): void {
  const handlers = requestHandlers(server);
  const original = handlers.get('tools/call');
  if (!original) throw new Error('the MCP SDK no longer keeps a tools/call handler where rerank-mcp expects it: check refuseUnknownTools against the installed @modelcontextprotocol/sdk');
  const known = (server as unknown as { _registeredTools: Record<string, unknown> })._registeredTools;
  handlers.set('tools/call', async (request, extra) => {
    const name = request.params?.name;
    if (typeof name === 'string' && !Object.hasOwn(known, name)) {
      // A plain Error with a code: the SDK sends its message as it is (McpError would prefix "MCP error -32602: ").
      throw Object.assign(new Error(`Unknown tool: ${name.slice(0, 100)} (this server has ${Object.keys(known).join(', ')})`), { code: ErrorCode.InvalidParams });
    }
    return original(request, extra);
  });
}

type ToolResult = { isError?: boolean; content?: { type: string; text?: string }[]; _meta?: Record<string, unknown> };

/**
 * Every tools/call is one request for the operator (initialize, ping and the list methods are
 * housekeeping, not counted): a record begins when it arrives, the tool's work runs with its
 * request id on every log line, and the result's _meta carries the timings (as REST answers
 * carry TEI's headers). The caller may name the request (_meta "rerank-mcp/request_id") and
 * its trace (_meta traceparent, as the MCP semantic conventions propagate it).
 */
function recordToolCalls(server: McpServer, ctx: ServerContext, transport: Transport): void {
  const handlers = requestHandlers(server);
  const original = handlers.get('tools/call');
  if (!original) throw new Error('the MCP SDK no longer keeps a tools/call handler where rerank-mcp expects it: check recordToolCalls against the installed @modelcontextprotocol/sdk');
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  handlers.set('tools/call', async (request, extra) => {
    const name = String(request.params?.name);
    const meta = request.params?._meta ?? {};
    const topK = request.params?.arguments?.top_k;
    const record = beginCall({
      face: 'mcp',
      transport,
      method: name,
      requestId: text(meta['rerank-mcp/request_id']),
      client: server.server.getClientVersion()?.name,
      sessionId: extra.sessionId,
      traceparent: text(meta.traceparent),
      tracestate: text(meta.tracestate),
      attributes: {
        'mcp.method.name': 'tools/call',
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': name,
        'jsonrpc.request.id': String(extra.requestId),
        'network.transport': transport === 'http' ? 'tcp' : 'pipe',
        ...(extra.sessionId ? { 'mcp.session.id': extra.sessionId } : {}),
        ...(typeof topK === 'number' ? { 'reranker.top_k': topK } : {}),
      },
    });
    attachCall(extra, record);
    const failure = (): FailureKind => (extra.signal.aborted ? 'cancelled' : ctx.host.state !== 'ready' ? 'unhealthy' : 'backend');
    try {
      const result = (await record.run(() => original(request, extra))) as ToolResult;
      if (!result?.isError) record.end();
      else {
        // An isError result is a call the caller can fix (bad arguments, over the budget), unless the model cannot be had.
        const kind = extra.signal.aborted ? 'cancelled' : ctx.host.state === 'ready' || record.refusal ? 'validation' : 'unhealthy';
        record.end(kind, { message: result.content?.find((c) => c.type === 'text')?.text });
      }
      return { ...result, _meta: { ...result?._meta, ...record.meta() } };
    } catch (err) {
      record.end(failure(), { message: (err as Error).message });
      throw err;
    }
  });
}
