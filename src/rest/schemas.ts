/**
 * Request shapes of the REST face, as the tools that call rerankers send them: Cohere's and
 * Jina's /v1/rerank and /v2/rerank, and Hugging Face TEI's /rerank. Texts and counts obey the
 * same limits as the MCP tools (src/api/schemas.ts). Unknown top-level fields are ignored, not
 * refused: clients such as LiteLLM send provider fields (max_chunks_per_doc) that mean nothing
 * to a local cross-encoder. A top-level `null` is taken as absent before these run (routes.ts):
 * the Python SDKs and Dify send `null` for every optional field they were not given.
 */
import { z } from 'zod';
import { deadlineMs, MAX_DOCUMENTS, MAX_TEXT_CHARS, text } from '../api/schemas.js';

/** Cohere v1 and Jina take objects; `text` is what is ranked unless rank_fields names other fields. */
const documentObject = z.object({ text: text('a document text').optional() }).passthrough();

export const MAX_RANK_FIELDS = 50;

const instruction = () => z.string().max(2000, 'instruction is limited to 2000 characters').optional();

export const cohereRerankRequest = z.object({
  model: z.string().max(200).optional(),
  query: text('query'),
  documents: z
    .array(z.union([text('a document'), documentObject], { errorMap: () => ({ message: 'a document must be a string or an object such as {text: string, ...}' }) }), {
      invalid_type_error: 'documents must be an array',
      required_error: 'documents is required',
    })
    .min(1, 'documents must hold at least 1 document')
    .max(MAX_DOCUMENTS, `documents is limited to ${MAX_DOCUMENTS} per call`),
  // Cohere's API schema: minimum 1; a larger value than there are documents returns them all.
  top_n: z.number({ invalid_type_error: 'top_n must be a whole number' }).int('top_n must be a whole number').min(1, 'top_n must be at least 1 (leave it out, or null, for all results)').optional(),
  return_documents: z.boolean({ invalid_type_error: 'return_documents must be true or false' }).optional(),
  max_tokens_per_doc: z.number({ invalid_type_error: 'max_tokens_per_doc must be a whole number' }).int().min(1, 'max_tokens_per_doc must be at least 1').optional(),
  rank_fields: z
    .array(z.string().min(1).max(200, 'a rank_fields name is limited to 200 characters'), { invalid_type_error: 'rank_fields must be an array of field names' })
    .max(MAX_RANK_FIELDS, `rank_fields is limited to ${MAX_RANK_FIELDS} names`)
    .optional(),
  /** For models with a prompt template (Qwen3-Reranker, mxbai-rerank-v2), as the MCP tools take it. */
  instruction: instruction(),
  deadline_ms: deadlineMs(),
});

export const teiRerankRequest = z.object({
  query: text('query'),
  texts: z
    .array(text('a text'), { invalid_type_error: 'texts must be an array of strings', required_error: 'texts is required' })
    .min(1, 'texts must hold at least 1 text')
    .max(MAX_DOCUMENTS, `texts is limited to ${MAX_DOCUMENTS} per call`),
  raw_scores: z.boolean({ invalid_type_error: 'raw_scores must be true or false' }).optional(),
  return_text: z.boolean({ invalid_type_error: 'return_text must be true or false' }).optional(),
  truncate: z.boolean({ invalid_type_error: 'truncate must be true or false' }).optional(),
  truncation_direction: z.string().max(20).optional(),
  instruction: instruction(),
  deadline_ms: deadlineMs(),
});

export type CohereRerankRequest = z.infer<typeof cohereRerankRequest>;
export type CohereDocument = CohereRerankRequest['documents'][number];

/** Why a document cannot be ranked as given, as a path and a message (400). */
export class DocumentProblem extends Error {}

/**
 * The text a document is ranked on. With rank_fields, an object is ranked on those fields in
 * their order, one `field: value` line each (the YAML Cohere recommends for structured data in
 * v2, and what its v1 builds from rank_fields); fields it lacks are skipped, and values that are
 * not strings are written as JSON. Without rank_fields, its `text`.
 */
export function rankedText(doc: CohereDocument, index: number, rankFields: readonly string[] | undefined): string {
  if (typeof doc === 'string') return doc;
  if (rankFields && rankFields.length > 0) {
    const lines: string[] = [];
    for (const field of rankFields) {
      const value = (doc as Record<string, unknown>)[field];
      if (value === undefined || value === null) continue;
      lines.push(`${field}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
    }
    if (lines.length === 0) throw new DocumentProblem(`documents.${index}: has none of the rank_fields (${rankFields.join(', ')})`);
    const joined = lines.join('\n');
    if (joined.length > MAX_TEXT_CHARS) throw new DocumentProblem(`documents.${index}: its rank_fields come to ${joined.length} characters; a document is limited to ${MAX_TEXT_CHARS}`);
    return joined;
  }
  if (typeof doc.text !== 'string') throw new DocumentProblem(`documents.${index}: an object needs a text field, or name the fields to rank on in rank_fields (e.g. "rank_fields": ["title", "body"])`);
  return doc.text;
}
