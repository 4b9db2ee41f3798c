/**
 * What every tool handler shares: structured results mirrored as text for clients that
 * only read `content`, and the MCP request seen as a call of src/api (its cancellation signal,
 * progress notifications when the caller asked for them, the client's name).
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest, CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { CallProgress, UsageError, type CallContext } from '../api/call.js';
import { callAttachedTo } from '../observability/index.js';

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export function structuredResult<T extends Record<string, unknown>>(data: T): CallToolResult & { structuredContent: T } {
  return { content: [{ type: 'text', text: JSON.stringify(data) }], structuredContent: data };
}

export function errorResult(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** Refusals the caller can fix become isError results; anything else stays an error the SDK reports. */
export function asToolError(err: unknown): CallToolResult {
  if (err instanceof UsageError) return errorResult(err.message);
  throw err;
}

// One progress counter per request: a tool that waits for the model, then scores, counts on.
const progressByRequest = new WeakMap<ToolExtra, CallProgress>();

export function callOf(extra: ToolExtra, server?: McpServer): CallContext {
  const token = extra._meta?.progressToken;
  let progress = progressByRequest.get(extra);
  if (!progress && token !== undefined) {
    progress = new CallProgress((value, total, message) => {
      const params = { progressToken: token, progress: value, ...(total === undefined ? {} : { total }), message };
      extra.sendNotification({ method: 'notifications/progress', params }).catch(() => undefined);
    }, extra.signal);
    progressByRequest.set(extra, progress);
  }
  return { signal: extra.signal, progress, source: server?.server.getClientVersion()?.name, sessionId: extra.sessionId, record: callAttachedTo(extra) };
}
