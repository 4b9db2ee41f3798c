import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createRerankServer, type ServerContext } from '../mcp/server.js';
import { log } from '../log.js';
import { guardLines } from './stdin-line-guard.js';

/** Serves MCP over stdin/stdout; `onEnd` runs when the client closes stdin. */
export async function serveStdio(ctx: ServerContext, maxLineBytes: number, onEnd: () => void): Promise<void> {
  const server = createRerankServer(ctx);
  const input = guardLines(process.stdin, maxLineBytes, (line) => {
    const limit = `${Math.round(maxLineBytes / 1024 / 1024)} MiB`;
    const message = `request of ${(line.bytes / 1024 / 1024).toFixed(1)} MiB refused: messages are limited to ${limit} (--max-body-mb)`;
    log(message);
    if (line.id === undefined) return;
    const reply = line.isToolCall
      ? { jsonrpc: '2.0', id: line.id, result: { content: [{ type: 'text', text: message }], isError: true } }
      : { jsonrpc: '2.0', id: line.id, error: { code: -32600, message } };
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
  // The guard already bounds each line; the SDK's own bound must not be the one that trips.
  const transport = new StdioServerTransport(input, process.stdout, { maxBufferSize: maxLineBytes * 2 });
  server.server.onerror = (err) => log(`protocol error: ${err.message}`);
  // A client that goes away closes our stdin; nothing else will end the process. A model
  // load still under way settles first, so a broken model is reported, not hidden by exit 0.
  input.on('end', () => {
    void ctx.host
      .ready()
      .catch(() => undefined)
      .then(() => {
        log('stdin closed');
        onEnd();
      });
  });
  await server.connect(transport);
  log('serving MCP over stdio');
}
