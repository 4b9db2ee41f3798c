import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerContext } from '../server.js';
import { rerankInput, rerankOutput } from '../schemas.js';
import { engineFor, explainRefusal, structuredResult, submitOptionsFor } from '../tool-context.js';

export function registerRerankTool(server: McpServer, { host, feedback, inFlight }: ServerContext): void {
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
        const engine = await engineFor(host, extra);
        const texts = args.documents.map((d) => (typeof d === 'string' ? d : d.text));
        const ranked = await engine.rerank(args.query, texts, { ...submitOptionsFor(extra), longDocuments: args.long_documents }).catch(explainRefusal);
        // Every candidate is logged, not only those returned, so unlabeled ones can be mined as negatives.
        const rerankId = await feedback.logRerank({
          query: args.query,
          candidates: ranked.map((r) => ({ index: r.index, id: documentId(args.documents[r.index]), text: texts[r.index], score: r.score, logit: r.logit })),
          modelId: engine.model.id,
          source: server.server.getClientVersion()?.name,
          sessionId: extra.sessionId,
        });
        const returnDocuments = args.return_documents ?? true;
        let results = ranked.filter((r) => args.min_score === undefined || r.score >= args.min_score);
        if (args.top_k !== undefined) results = results.slice(0, args.top_k);
        return structuredResult({
          model: engine.model.files.dir,
          ...(rerankId ? { rerank_id: rerankId } : {}),
          results: results.map((r) => {
            const input = args.documents[r.index];
            const id = documentId(input);
            return {
              index: r.index,
              ...(id !== undefined ? { id } : {}),
              score: r.score,
              logit: r.logit,
              truncated: r.truncated,
              windows: r.windows,
              ...(returnDocuments ? { document: input } : {}),
            };
          }),
        });
      }),
  );
}

const documentId = (d: string | { id?: string }): string | undefined => (typeof d === 'string' ? undefined : d.id);
