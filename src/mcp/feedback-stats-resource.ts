import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { FeedbackService } from '../feedback/feedback-service.js';

/** feedback://stats: what the feedback database holds, and how much of it is ready for training. */
export function registerFeedbackStatsResource(server: McpServer, feedback: FeedbackService): void {
  server.registerResource(
    'feedback-stats',
    'feedback://stats',
    {
      title: 'Feedback statistics',
      description: 'Recorded relevance feedback by label, source, day and model; rerank calls logged; pairs ready for training.',
      mimeType: 'application/json',
    },
    async (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ database: feedback.path, ...(await feedback.stats()) }) }],
    }),
  );
}
