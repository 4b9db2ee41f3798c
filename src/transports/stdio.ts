import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createRerankServer, type ServerContext } from '../mcp/server.js';
import { log } from '../log.js';

/** Serves MCP over stdin/stdout; `onEnd` runs when the client closes stdin. */
export async function serveStdio(ctx: ServerContext, onEnd: () => void): Promise<void> {
  const server = createRerankServer(ctx);
  const transport = new StdioServerTransport();
  // A client that goes away closes our stdin; nothing else will end the process. A model
  // load still under way settles first, so a broken model is reported, not hidden by exit 0.
  process.stdin.on('end', () => {
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
