import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerContext } from '../../api/context.js';
import { rerankInput } from '../../api/schemas.js';
import { documentId, runRerank } from '../../api/rerank.js';
import { rerankOutput } from '../schemas.js';
import { callOf, structuredResult } from '../tool-context.js';

export function registerRerankTool(server: McpServer, ctx: ServerContext): void {
  const { feedback, inFlight } = ctx;
  server.registerTool(
    'rerank',
    {
      title: 'Rerank passages',
      description:
        'Order candidate passages (code chunks, docs, search hits) by true relevance to a query with a local cross-encoder. ' +
        'Use it after a first-stage retrieval (vector, BM25, grep) returned 10-1000 candidates and you need the best few: it reads query and passage together, ' +
        'so it is far more precise than embedding similarity. Returns results sorted best first with the input index, score and logit, and a rerank_id: ' +
        'once you know which results were right, pass it to the feedback tool.',
      inputSchema: rerankInput,
      outputSchema: rerankOutput,
      // With the rerank log on, every call stores its query and candidates in the feedback database.
      annotations: { title: 'Rerank passages', readOnlyHint: !feedback.rerankLogEnabled, destructiveHint: false, idempotentHint: !feedback.rerankLogEnabled, openWorldHint: false },
    },
    (args, extra) =>
      inFlight.track(async () => {
        const outcome = await runRerank(ctx, { query: args.query, documents: args.documents, longDocuments: args.long_documents, instruction: args.instruction, deadlineMs: args.deadline_ms }, callOf(extra, server));
        const returnDocuments = args.return_documents ?? true;
        let results = outcome.ranked.filter((r) => args.min_score === undefined || r.scored === false || r.score >= args.min_score);
        if (args.top_k !== undefined) results = results.slice(0, args.top_k);
        return structuredResult({
          model: outcome.model,
          ...(outcome.rerankId ? { rerank_id: outcome.rerankId } : {}),
          complete: outcome.complete,
          results: results.map((r) => {
            const input = args.documents[r.index];
            const id = documentId(input);
            return {
              index: r.index,
              ...(id !== undefined ? { id } : {}),
              ...(r.scored === false ? { scored: false as const } : { score: r.score, logit: r.logit }),
              truncated: r.truncated,
              windows: r.windows,
              ...(returnDocuments ? { document: input } : {}),
            };
          }),
        });
      }),
  );
}
