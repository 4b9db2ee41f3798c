import type { Readable, Writable } from 'node:stream';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createRerankServer, watchRequests, type ServerContext } from '../mcp/server.js';
import { log } from '../log.js';
import type { Transport } from '../observability/index.js';
import { guardLines } from './stdin-line-guard.js';
import { LineTransport } from './line-transport.js';

export interface StdioEvents {
  /** The client has completed the MCP handshake (`notifications/initialized`). */
  onInitialized: () => void;
  /** The client closed stdin. */
  onEnd: () => void;
}

/**
 * Serves MCP over stdin/stdout, or over another pair of streams carrying the same newline-delimited
 * JSON-RPC (the shared daemon passes each shim's socket).
 */
export async function serveStdio(
  ctx: ServerContext,
  maxLineBytes: number,
  { onInitialized, onEnd }: StdioEvents,
  { input: source, output }: { input: Readable; output: Writable } = { input: process.stdin, output: process.stdout },
  /** How its calls are labelled: the daemon's clients as 'daemon'. */
  label: Transport = 'stdio',
): Promise<McpServer> {
  const server = createRerankServer(ctx, label);
  server.server.oninitialized = onInitialized;
  const reply = (message: unknown) => output.write(JSON.stringify(message) + '\n');
  const input = guardLines(source, maxLineBytes, (line) => {
    const limit = `${Math.round(maxLineBytes / 1024 / 1024)} MiB`;
    const message = `request of ${(line.bytes / 1024 / 1024).toFixed(1)} MiB refused: messages are limited to ${limit} (--max-body-mb)`;
    log(message);
    if (line.id === undefined) return;
    reply(
      line.isToolCall
        ? { jsonrpc: '2.0', id: line.id, result: { content: [{ type: 'text', text: message }], isError: true } }
        : { jsonrpc: '2.0', id: line.id, error: { code: -32600, message } },
    );
  });
  const transport = new LineTransport(input, output);
  watchRequests(server, (id) => transport.settled(id));
  // One line per error: the SDK's messages can be multi-line schema dumps.
  server.server.onerror = (err) => log(`protocol error: ${err.message.replace(/\s+/g, ' ').slice(0, 300)}`);
  // A client that goes away closes our stdin; nothing else will end the process.
  input.on('end', () => {
    log('stdin closed');
    onEnd();
  });
  await server.connect(transport);
  log('serving MCP over stdio');
  return server;
}
