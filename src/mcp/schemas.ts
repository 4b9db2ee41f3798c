/**
 * The zod shapes of tool inputs and outputs. Limits live here, with messages that name
 * them, because an agent reads the message to fix its call.
 */
import { z } from 'zod';

export const MAX_DOCUMENTS = 1000;
export const MAX_TEXT_CHARS = 100_000;

export const text = (what: string) => z.string({ invalid_type_error: `${what} must be a string`, required_error: `${what} is required` }).max(MAX_TEXT_CHARS, `${what} is limited to ${MAX_TEXT_CHARS} characters`);

const documentObject = z.object({
  id: z.string().max(1000, 'a document id is limited to 1000 characters').optional(),
  text: text('a document text'),
  metadata: z.record(z.unknown()).optional(),
});

// A failed union reports only "Invalid input"; say which rule the document broke instead.
export const documentInput = z.union([text('a document'), documentObject], {
  errorMap: (_issue, ctx) => {
    const data = ctx.data as unknown;
    if (typeof data === 'string') return { message: `a document is limited to ${MAX_TEXT_CHARS} characters` };
    const parsed = documentObject.safeParse(data);
    if (!parsed.success && typeof data === 'object' && data !== null) {
      return { message: `a document object must be {id?: string, text: string, metadata?: object}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}` };
    }
    return { message: 'a document must be a string or an object {id?, text, metadata?}' };
  },
});

export const scoreFields = {
  score: z.number().describe("relevance score: the model's activation applied to the logit (what sentence-transformers' CrossEncoder.predict returns)"),
  logit: z.number().describe('raw model output before the activation'),
  truncated: z.boolean().describe('true when query + document exceeded max_length and were cut'),
};

export const rerankInput = {
  query: text('query').describe('what the agent is looking for'),
  documents: z
    .array(documentInput, { invalid_type_error: 'documents must be an array' })
    .min(1, 'documents must hold at least 1 document')
    .max(MAX_DOCUMENTS, `documents is limited to ${MAX_DOCUMENTS} per call`)
    .describe('candidate passages: strings, or objects {id?, text, metadata?}'),
  top_k: z.number().int().min(1, 'top_k must be at least 1').optional().describe('return only the best k results'),
  min_score: z.number().optional().describe('drop results scoring below this'),
  return_documents: z.boolean().optional().describe('echo each document in its result (default true)'),
};

export const rerankOutput = {
  model: z.string(),
  results: z.array(
    z.object({
      index: z.number().int().describe('position of the document in the input'),
      id: z.string().optional(),
      ...scoreFields,
      document: documentInput.optional(),
    }),
  ),
};

const pairInput = z.object({ query: text('query'), document: text('document') });

export const scorePairInput = {
  query: text('query').optional(),
  document: text('document').optional(),
  pairs: z
    .array(pairInput)
    .min(1, 'pairs must hold at least 1 pair')
    .max(MAX_DOCUMENTS, `pairs is limited to ${MAX_DOCUMENTS} per call`)
    .optional()
    .describe('several pairs at once, scored in input order'),
};

export const scorePairOutput = {
  model: z.string(),
  results: z.array(z.object(scoreFields)),
};

export const modelInfoOutput = {
  path: z.string(),
  onnx_file: z.string(),
  variant: z.enum(['fp32', 'int8']),
  input_names: z.array(z.string()),
  max_length: z.number().int(),
  activation: z.string(),
  num_labels: z.number().int(),
  onnxruntime_version: z.string(),
  threads: z.number().int(),
  max_batch_tokens: z.number().int(),
  batch_wait_ms: z.number(),
  batches_run: z.number().int(),
  pairs_scored: z.number().int(),
};
