/**
 * A client whose POST stream closes before its answer came is gone, but the SDK only forgets
 * the stream (a client could resume it through an event store, which this server does not
 * keep), so the tool call would run to its end for nobody and hold the engine meanwhile. The
 * close is turned into notifications/cancelled for each request the POST carried: the SDK
 * then aborts the handler's signal, and the engine drops the call's remaining batches.
 */
import type { Response } from 'express';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isJSONRPCRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export function cancelOnDisconnect(transport: StreamableHTTPServerTransport, body: unknown, res: Response): void {
  const ids = (Array.isArray(body) ? body : [body]).filter((m) => isJSONRPCRequest(m)).map((m) => (m as { id: string | number }).id);
  if (ids.length === 0) return;
  res.once('close', () => {
    if (res.writableFinished) return;
    for (const requestId of ids) {
      const cancel: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'the client closed the HTTP stream' } };
      transport.onmessage?.(cancel);
    }
  });
}
