import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerContext } from '../../api/context.js';
import { feedbackInput } from '../../api/schemas.js';
import { runFeedback } from '../../api/feedback.js';
import { feedbackOutput } from '../schemas.js';
import { asToolError, callOf, structuredResult } from '../tool-context.js';

export function registerFeedbackTool(server: McpServer, ctx: ServerContext): void {
  server.registerTool(
    'feedback',
    {
      title: 'Record relevance feedback',
      description:
        'Record which passages were actually relevant to a query, so the reranker can later be fine-tuned on this team\'s data. ' +
        'Call it once you know the answer: after using (or rejecting) reranked results, label them by rerank_id with the indexes or ids of the relevant ' +
        'and irrelevant results (no need to resend text), or send {query, document, label} pairs directly; label is 1/true for relevant, 0/false for not, or a grade in between.',
      inputSchema: feedbackInput,
      outputSchema: feedbackOutput,
      annotations: { title: 'Record relevance feedback', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    (args, extra) =>
      ctx.inFlight.track(async () => {
        try {
          return structuredResult({ ...(await runFeedback(ctx, args, callOf(extra, server))) });
        } catch (err) {
          return asToolError(err);
        }
      }),
  );
}
