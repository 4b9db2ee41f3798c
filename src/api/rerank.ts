/**
 * A rerank call as both faces run it: score every document, rank them, and log the call
 * (every candidate, not only those returned, so unlabeled ones can be mined as negatives)
 * so that its rerank_id can be labeled later, on this replica or any other sharing the store.
 */
import type { LongDocuments, RankedDocument } from '../engine/scoring-engine.js';
import type { ServerContext } from './context.js';
import { engineFor, explainRefusal, submitOptionsFor, type CallContext } from './call.js';
import type { AttributeValue } from '../observability/index.js';

export type DocumentInput = string | { id?: string; text: string; metadata?: Record<string, unknown> };

export interface RerankRequest {
  query: string;
  documents: readonly DocumentInput[];
  longDocuments?: LongDocuments;
  /** For models with a prompt template (see the engine's ScoreOptions). */
  instruction?: string;
  /** Answer within this many milliseconds with what is scored by then (see the engine's ScoreOptions). */
  deadlineMs?: number;
}

export interface RerankOutcome {
  /** The served model directory, as the MCP tools report it. */
  model: string;
  rerankId: string | undefined;
  /** Best first; equal scores keep input order; those a deadline left unscored (scored: false) last, in input order. */
  ranked: RankedDocument[];
  /** False when a deadline came before every document was scored. */
  complete: boolean;
  /** Tokens sent to the model (cached pairs are free). */
  tokens: number;
  /** Labels of the model's output: 1 (a logit) or 2 (log-odds of label 1, see pairLogit). */
  numLabels: number;
}

export const documentText = (d: DocumentInput): string => (typeof d === 'string' ? d : d.text);
export const documentId = (d: DocumentInput): string | undefined => (typeof d === 'string' ? undefined : d.id);

export async function runRerank(ctx: ServerContext, request: RerankRequest, call: CallContext): Promise<RerankOutcome> {
  const engine = await engineFor(ctx.host, call);
  const texts = request.documents.map(documentText);
  const record = call.record;
  if (record?.traced) record.setAttributes(rerankerAttributes(request.query, texts, engine.model.files.dir, record.traceDocuments));
  let tokens = 0;
  const ranked = await engine
    .rerank(request.query, texts, { ...submitOptionsFor(call), longDocuments: request.longDocuments, instruction: request.instruction, deadlineMs: request.deadlineMs, onTokens: (n) => (tokens = n) })
    .catch((err) => explainRefusal(err, call));
  const complete = ranked.every((r) => r.scored !== false);
  if (record?.traced) record.setAttributes(rankedAttributes(ranked, request.documents));
  const logged = () => ctx.feedback.logRerank({
    query: request.query,
    // The log keeps scores: documents a deadline left unscored are not in it.
    candidates: ranked.filter((r) => r.scored !== false).map((r) => ({ index: r.index, id: documentId(request.documents[r.index]), text: texts[r.index], score: r.score, logit: r.logit })),
    modelId: engine.model.id,
    source: call.source,
    sessionId: call.sessionId,
  });
  const rerankId = record ? await record.phase('store write', logged, { 'rerank_mcp.store.operation': 'log_rerank' }) : await logged();
  return { model: engine.model.files.dir, rerankId, ranked, complete, tokens, numLabels: engine.model.numLabels };
}

/** OpenInference's reranker attributes; document texts only with --trace-documents (they are the user's data). */
function rerankerAttributes(query: string, texts: readonly string[], model: string, withTexts: boolean): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = { 'openinference.span.kind': 'RERANKER', 'reranker.query': query, 'reranker.model_name': model, 'rerank_mcp.documents': texts.length };
  if (withTexts) texts.forEach((text, i) => (attributes[`reranker.input_documents.${i}.document.content`] = text));
  return attributes;
}

/** The ranking as OpenInference records it: each output document's id (input index unless it has one) and score, best first. */
function rankedAttributes(ranked: readonly RankedDocument[], documents: readonly DocumentInput[]): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = {};
  ranked.slice(0, 100).forEach((r, i) => {
    attributes[`reranker.output_documents.${i}.document.id`] = documentId(documents[r.index]) ?? String(r.index);
    attributes[`reranker.output_documents.${i}.document.score`] = r.score;
  });
  return attributes;
}
