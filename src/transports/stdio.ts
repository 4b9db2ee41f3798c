import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { EngineHost } from '../engine/engine-host.js';
import type { FeedbackService } from '../feedback/feedback-service.js';
import { createRerankServer } from '../mcp/server.js';
import { log } from '../log.js';

/** Serves MCP over stdin/stdout until the client closes stdin. */
export async function serveStdio(host: EngineHost, feedback: FeedbackService): Promise<void> {
  const server = createRerankServer(host, feedback);
  const transport = new StdioServerTransport();
  // A client that goes away closes our stdin; nothing else will end the process. A model
  // load still under way settles first, so a broken model is reported, not hidden by exit 0.
  process.stdin.on('end', () => {
    void host
      .ready()
      .catch(() => undefined)
      .then(() => {
        log('stdin closed, exiting');
        return server.close();
      })
      .finally(() => process.exit(0));
  });
  await server.connect(transport);
  log('serving MCP over stdio');
}
