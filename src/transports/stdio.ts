import { createRerankServer, watchRequests, type ServerContext } from '../mcp/server.js';
import { log } from '../log.js';
import { guardLines } from './stdin-line-guard.js';
import { LineTransport } from './line-transport.js';

export interface StdioEvents {
  /** The client has completed the MCP handshake (`notifications/initialized`). */
  onInitialized: () => void;
  /** The client closed stdin. */
  onEnd: () => void;
}

/** Serves MCP over stdin/stdout. */
export async function serveStdio(ctx: ServerContext, maxLineBytes: number, { onInitialized, onEnd }: StdioEvents): Promise<void> {
  const server = createRerankServer(ctx);
  server.server.oninitialized = onInitialized;
  const reply = (message: unknown) => process.stdout.write(JSON.stringify(message) + '\n');
  const input = guardLines(process.stdin, maxLineBytes, (line) => {
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
  const transport = new LineTransport(input, process.stdout);
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
}
