import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { EngineHost } from '../engine/engine-host.js';
import { createRerankServer } from '../mcp/server.js';
import { log } from '../log.js';

/** Serves MCP over stdin/stdout until the client closes stdin. */
export async function serveStdio(host: EngineHost): Promise<void> {
  const server = createRerankServer(host);
  const transport = new StdioServerTransport();
  // A client that goes away closes our stdin; nothing else will end the process.
  process.stdin.on('end', () => {
    log('stdin closed, exiting');
    void server.close().finally(() => process.exit(0));
  });
  await server.connect(transport);
  log('serving MCP over stdio');
}
