/**
 * The zod shapes of call inputs, shared by the MCP tools and the REST routes. Limits live
 * here, with messages that name them, because an agent reads the message to fix its call.
 *
 * Inputs are strict objects: the advertised JSON Schema says additionalProperties: false, so
 * an unknown field (often a misspelt one) is refused rather than silently ignored. Every
 * sub-schema is built fresh where it is used: a zod instance used twice in one tool becomes
 * a JSON Schema $ref, which some clients cannot resolve.
 */
import { z } from 'zod';

export const MAX_DOCUMENTS = 1000;
export const MAX_TEXT_CHARS = 100_000;

export const text = (what: string) => z.string({ invalid_type_error: `${what} must be a string`, required_error: `${what} is required` }).max(MAX_TEXT_CHARS, `${what} is limited to ${MAX_TEXT_CHARS} characters`);

/** A free-form JSON object, spelled so that clients see a typed schema. */
const metadata = () => z.object({}).passthrough();

const documentObject = z
  .object({
    id: z.string().max(1000, 'a document id is limited to 1000 characters').optional(),
    text: text('a document text'),
    metadata: metadata().optional(),
  })
  .strict();

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

const longDocuments = z
  .enum(['truncate', 'chunk'])
  .optional()
  .describe('truncate (default): cut what does not fit in max_length; chunk: score overlapping windows of a long document and keep the best');

const instruction = z
  .string()
  .max(2000, 'instruction is limited to 2000 characters')
  .optional()
  .describe("task instruction for instruction-aware rerankers (Qwen3-Reranker, mxbai-rerank-v2), e.g. 'Given a code question, retrieve the function that answers it'; default: the model card's (model_info.default_instruction); refused for models without a prompt template");

/** Shared with the REST bodies, built fresh for each (see the header). */
export const deadlineMs = () =>
  z
    .number()
    .int('deadline_ms must be a whole number of milliseconds')
    .min(1, 'deadline_ms must be at least 1')
    .optional()
    .describe('answer within this many milliseconds: documents not scored by then come last, in input order, with scored: false, and complete is false (default: no deadline, or the server\'s --max-call-ms)');

export const rerankInput = z
  .object({
    query: text('query').describe('what the agent is looking for'),
    documents: z
      .array(documentInput, { invalid_type_error: 'documents must be an array' })
      .min(1, 'documents must hold at least 1 document')
      .max(MAX_DOCUMENTS, `documents is limited to ${MAX_DOCUMENTS} per call`)
      .describe(`candidate passages: strings, or objects {id?, text, metadata?}; the whole request must also fit the server's --max-body-mb (default 128 MiB)`),
    top_k: z.number().int().min(1, 'top_k must be at least 1').optional().describe('return only the best k results'),
    min_score: z.number().optional().describe('drop results scoring below this'),
    return_documents: z.boolean().optional().describe('echo each document in its result (default true)'),
    long_documents: longDocuments,
    instruction,
    deadline_ms: deadlineMs(),
  })
  .strict();

const pairInput = z.object({ query: text('query'), document: text('document') }).strict();

export const scorePairInput = z
  .object({
    query: text('query').optional(),
    document: text('document').optional(),
    pairs: z
      .array(pairInput)
      .min(1, 'pairs must hold at least 1 pair')
      .max(MAX_DOCUMENTS, `pairs is limited to ${MAX_DOCUMENTS} per call`)
      .optional()
      .describe("several pairs at once, scored in input order; the whole request must also fit the server's --max-body-mb (default 128 MiB)"),
    long_documents: longDocuments,
    instruction,
  })
  .strict();

export const modelInfoInput = z.object({}).strict();

const LABEL_RULE = 'label must be a finite number from 0 to 1, or a boolean';
const label = () =>
  z.union([z.number().finite(LABEL_RULE).min(0, LABEL_RULE).max(1, LABEL_RULE), z.boolean()], {
    errorMap: () => ({ message: LABEL_RULE }),
  });
const shortText = (what: string) => z.string().max(200, `${what} is limited to 200 characters`);
const resultRef = () =>
  z.union([z.number().int().min(0), z.string().max(1000)], {
    errorMap: () => ({ message: 'relevant and irrelevant hold result indexes (whole numbers) or document ids (strings)' }),
  });
const judgedDocument = () => z.union([text('document'), z.object({ id: z.string().max(1000).optional(), text: text('document text') }).strict()]);
const feedbackItem = z
  .object({
    query: text('query'),
    document: judgedDocument(),
    label: label(),
    source: shortText('source').optional(),
    session_id: shortText('session_id').optional(),
    metadata: metadata().optional(),
  })
  .strict();

export const feedbackInput = z
  .object({
    query: text('query').optional(),
    document: judgedDocument().optional().describe('the passage judged: a string or {id?, text}'),
    label: label().optional().describe('1 or true = relevant, 0 or false = not relevant, or a grade in between'),
    items: z.array(feedbackItem).min(1, 'items must hold at least 1 item').max(MAX_DOCUMENTS, `items is limited to ${MAX_DOCUMENTS} per call`).optional(),
    rerank_id: z.string().max(100).optional().describe('the rerank_id of a rerank result, to label its candidates without resending text'),
    relevant: z.array(resultRef()).max(MAX_DOCUMENTS).optional().describe('with rerank_id: indexes or ids of the relevant results'),
    irrelevant: z.array(resultRef()).max(MAX_DOCUMENTS).optional().describe('with rerank_id: indexes or ids of results that were not relevant'),
    source: shortText('source').optional().describe('who judged (default: the MCP client name)'),
    session_id: shortText('session_id').optional(),
    metadata: metadata().optional(),
  })
  .strict();

export type FeedbackArgs = z.infer<typeof feedbackInput>;
