import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerContext } from '../server.js';
import type { EngineHost } from '../../engine/engine-host.js';
import type { FeedbackInput } from '../../feedback/feedback-store.js';
import { feedbackInput, feedbackOutput, type FeedbackArgs } from '../schemas.js';
import { engineFor, errorResult, structuredResult, submitOptionsFor, type ToolExtra } from '../tool-context.js';

const FORMS = 'feedback takes one of: {query, document, label}, {items: [{query, document, label}, ...]}, or {rerank_id, relevant: [...], irrelevant?: [...]}';

export function registerFeedbackTool(server: McpServer, { host, feedback, inFlight }: ServerContext): void {
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
      inFlight.track(async () => {
        const byText = args.query !== undefined || args.document !== undefined || args.label !== undefined;
        const forms = [byText, args.items !== undefined, args.rerank_id !== undefined].filter(Boolean).length;
        if (forms !== 1) return errorResult(FORMS);
        const meta = { source: args.source ?? server.server.getClientVersion()?.name, sessionId: args.session_id ?? extra.sessionId };
        if (args.rerank_id !== undefined) {
          if (!args.relevant?.length && !args.irrelevant?.length) return errorResult('feedback by rerank_id needs relevant and/or irrelevant result indexes or ids');
          const stored = await feedback.labelRerank(args.rerank_id, args.relevant ?? [], args.irrelevant ?? [], meta);
          return structuredResult({ stored: stored.count, ids: stored.ids, repeats: stored.repeats });
        }
        if (byText && (args.query === undefined || args.document === undefined || args.label === undefined)) {
          return errorResult('feedback by text needs query, document and label');
        }
        const items = args.items ?? [{ query: args.query!, document: args.document!, label: args.label!, metadata: args.metadata }];
        const inputs = await withModelScores(items, host, extra, meta);
        const stored = await feedback.record(inputs);
        return structuredResult({ stored: stored.count, ids: stored.ids, repeats: stored.repeats });
      }),
  );
}

type TextItem = NonNullable<FeedbackArgs['items']>[number];

/** Each event keeps the score the current model gives its pair, to compare models later. */
async function withModelScores(items: TextItem[], host: EngineHost, extra: ToolExtra, meta: { source?: string; sessionId?: string }): Promise<FeedbackInput[]> {
  const engine = await engineFor(host, extra);
  const pairs = items.map((item) => ({ query: item.query, document: typeof item.document === 'string' ? item.document : item.document.text }));
  const scores = await engine.scorePairs(pairs, submitOptionsFor(extra));
  return items.map((item, i) => ({
    query: pairs[i].query,
    document: pairs[i].document,
    documentId: typeof item.document === 'string' ? undefined : item.document.id,
    label: typeof item.label === 'boolean' ? Number(item.label) : item.label,
    source: item.source ?? meta.source,
    sessionId: item.session_id ?? meta.sessionId,
    metadata: item.metadata,
    modelId: engine.model.id,
    modelScore: scores[i].score,
  }));
}
