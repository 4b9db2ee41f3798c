/**
 * A feedback call as both faces run it: labels by rerank_id (looked up in the shared store, so
 * any replica can take them), or labeled pairs by text, each kept with the score the current
 * model gives it. The answer comes only once the store has committed the events.
 */
import type { FeedbackInput } from '../feedback/feedback-store.js';
import type { FeedbackArgs } from './schemas.js';
import type { ServerContext } from './context.js';
import { engineFor, submitOptionsFor, UsageError, type CallContext } from './call.js';
import { countFeedback } from '../observability/index.js';

export const FEEDBACK_FORMS =
  'feedback takes one of: {query, document, label}, {items: [{query, document, label}, ...]}, or {rerank_id, relevant: [...], irrelevant?: [...]}';

export interface FeedbackOutcome {
  stored: number;
  ids: number[];
  repeats: number;
}

export async function runFeedback(ctx: ServerContext, args: FeedbackArgs, call: CallContext): Promise<FeedbackOutcome> {
  try {
    const outcome = await storeFeedback(ctx, args, call);
    countFeedback(outcome.stored);
    return outcome;
  } catch (err) {
    countFeedback(undefined);
    throw err;
  }
}

async function storeFeedback(ctx: ServerContext, args: FeedbackArgs, call: CallContext): Promise<FeedbackOutcome> {
  const write = <T>(operation: string, work: () => Promise<T>) => (call.record ? call.record.phase('store write', work, { 'rerank_mcp.store.operation': operation }) : work());
  const byText = args.query !== undefined || args.document !== undefined || args.label !== undefined;
  const forms = [byText, args.items !== undefined, args.rerank_id !== undefined].filter(Boolean).length;
  if (forms !== 1) throw new UsageError(FEEDBACK_FORMS);
  const meta = { source: args.source ?? call.source, sessionId: args.session_id ?? call.sessionId };
  if (args.rerank_id !== undefined) {
    if (!args.relevant?.length && !args.irrelevant?.length) throw new UsageError('feedback by rerank_id needs relevant and/or irrelevant result indexes or ids');
    const rerankId = args.rerank_id;
    const stored = await write('label_rerank', () => ctx.feedback.labelRerank(rerankId, args.relevant ?? [], args.irrelevant ?? [], meta));
    return { stored: stored.count, ids: stored.ids, repeats: stored.repeats };
  }
  if (byText && (args.query === undefined || args.document === undefined || args.label === undefined)) {
    throw new UsageError('feedback by text needs query, document and label');
  }
  const items = args.items ?? [{ query: args.query!, document: args.document!, label: args.label!, metadata: args.metadata }];
  const inputs = await withModelScores(ctx, items, call, meta);
  const stored = await write('record', () => ctx.feedback.record(inputs));
  return { stored: stored.count, ids: stored.ids, repeats: stored.repeats };
}

type TextItem = NonNullable<FeedbackArgs['items']>[number];

/** Each event keeps the score the current model gives its pair, to compare models later. */
async function withModelScores(ctx: ServerContext, items: TextItem[], call: CallContext, meta: { source?: string; sessionId?: string }): Promise<FeedbackInput[]> {
  const engine = await engineFor(ctx.host, call);
  const pairs = items.map((item) => ({ query: item.query, document: typeof item.document === 'string' ? item.document : item.document.text }));
  const scores = await engine.scorePairs(pairs, submitOptionsFor(call));
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
