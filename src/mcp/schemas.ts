/**
 * The zod shapes of the MCP tools' structured outputs; their inputs (and limits) are in
 * src/api/schemas.ts, shared with the REST routes.
 */
import { z } from 'zod';
import { documentInput } from '../api/schemas.js';

export const scoreFields = {
  score: z.number().describe("relevance score: the model's activation applied to the logit (what sentence-transformers' CrossEncoder.predict returns)"),
  logit: z.number().describe('raw model output before the activation'),
  truncated: z.boolean().describe('true when query + document exceeded max_length and were cut'),
  windows: z.number().int().describe('windows of the document scored: 1, or more when long_documents is chunk and it did not fit'),
};

export const rerankOutput = {
  model: z.string(),
  rerank_id: z.string().optional().describe('pass to feedback with the indexes or ids of relevant results'),
  complete: z.boolean().describe('false when deadline_ms (or the server\'s --max-call-ms) came before every document was scored'),
  results: z.array(
    z.object({
      index: z.number().int().describe('position of the document in the input'),
      id: z.string().optional(),
      ...scoreFields,
      score: scoreFields.score.optional(),
      logit: scoreFields.logit.optional(),
      scored: z.literal(false).optional().describe('present when the deadline came first: this document was not scored (no score or logit); these come last, in input order'),
      document: documentInput.optional(),
    }),
  ),
};

export const scorePairOutput = {
  model: z.string(),
  results: z.array(z.object(scoreFields)),
};

/** Only state and model are known before the model has loaded; error says why the last load failed. */
export const modelInfoOutput = {
  state: z.enum(['idle', 'loading', 'ready', 'failed']),
  model: z.string(),
  error: z.string().optional(),
  path: z.string().optional(),
  onnx_file: z.string().optional(),
  variant: z.enum(['fp32', 'int8']).optional(),
  input_names: z.array(z.string()).optional(),
  max_length: z.number().int().optional(),
  max_length_note: z.string().optional(),
  activation: z.string().optional(),
  num_labels: z.number().int().optional(),
  tokenizer_family: z.string().optional(),
  tokenizer_verified: z.boolean().optional(),
  prompt_template: z.enum(['none', 'qwen3-reranker', 'mxbai-rerank-v2']).optional(),
  default_instruction: z.string().optional().describe('the instruction used when a call gives none (templates that have one)'),
  pad_token_id: z.number().int().optional(),
  onnxruntime_version: z.string().optional(),
  inference: z.enum(['prefix-reuse', 'plain']).optional().describe('prefix-reuse: the tokens all documents of a call share run once (onnx/model_past.onnx, or model_past_quantized.onnx for int8; see prefix_graph); plain: every pair runs whole'),
  prefix_graph: z.string().optional(),
  prefix_runs: z.number().int().optional().describe('prefixes run through the prefix graph'),
  prefix_batches: z.number().int().optional().describe('batches scored through the prefix graph'),
  max_call_ms: z.number().int().optional(),
  threads: z.number().int().optional(),
  max_batch_tokens: z.number().int().optional(),
  batch_wait_ms: z.number().optional(),
  batches_run: z.number().int().optional(),
  pairs_scored: z.number().int().optional(),
  chunk_overlap: z.number().int().optional(),
  max_call_tokens: z.number().int().optional(),
  cache: z.object({ entries: z.number().int(), capacity: z.number().int(), hits: z.number().int(), misses: z.number().int() }).optional(),
};

export const feedbackOutput = {
  stored: z.number().int().describe('events written'),
  ids: z.array(z.number().int()),
  repeats: z.number().int().describe('how many repeat a (query, document) pair already recorded'),
};
