/**
 * Request shapes of the REST face, as the tools that call rerankers send them: Cohere's and
 * Jina's /v1/rerank and /v2/rerank, and Hugging Face TEI's /rerank. Texts and counts obey the
 * same limits as the MCP tools (src/api/schemas.ts). Unknown top-level fields are ignored, not
 * refused: clients such as LiteLLM send provider fields (rank_fields, max_chunks_per_doc) that
 * mean nothing to a local cross-encoder.
 */
import { z } from 'zod';
import { deadlineMs, MAX_DOCUMENTS, text } from '../api/schemas.js';

const documentObject = z.object({ text: text('a document text') }).passthrough();

export const cohereRerankRequest = z.object({
  model: z.string().max(200).optional(),
  query: text('query'),
  documents: z
    .array(z.union([text('a document'), documentObject], { errorMap: () => ({ message: 'a document must be a string or an object {text: string, ...}' }) }), {
      invalid_type_error: 'documents must be an array',
      required_error: 'documents is required',
    })
    .min(1, 'documents must hold at least 1 document')
    .max(MAX_DOCUMENTS, `documents is limited to ${MAX_DOCUMENTS} per call`),
  top_n: z.number().int().min(1, 'top_n must be at least 1').optional(),
  return_documents: z.boolean().optional(),
  max_tokens_per_doc: z.number().int().min(1, 'max_tokens_per_doc must be at least 1').optional(),
  /** For models with a prompt template (Qwen3-Reranker, mxbai-rerank-v2), as the MCP tools take it. */
  instruction: z.string().max(2000, 'instruction is limited to 2000 characters').optional(),
  deadline_ms: deadlineMs(),
});

export const teiRerankRequest = z.object({
  query: text('query'),
  texts: z
    .array(text('a text'), { invalid_type_error: 'texts must be an array of strings', required_error: 'texts is required' })
    .min(1, 'texts must hold at least 1 text')
    .max(MAX_DOCUMENTS, `texts is limited to ${MAX_DOCUMENTS} per call`),
  raw_scores: z.boolean().optional(),
  return_text: z.boolean().optional(),
  truncate: z.boolean().optional(),
  truncation_direction: z.string().optional(),
  instruction: z.string().max(2000, 'instruction is limited to 2000 characters').optional(),
  deadline_ms: deadlineMs(),
});

export type CohereRerankRequest = z.infer<typeof cohereRerankRequest>;
