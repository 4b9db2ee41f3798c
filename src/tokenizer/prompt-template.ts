/**
 * The prompts decoder rerankers were trained with. A Qwen3-Reranker or mxbai-rerank-v2 scores a
 * pair only inside its chat prompt (without it, scores are near random), and its truncation
 * keeps the prompt's end: the assistant prefix whose last token the classifier head reads.
 *
 * Everything here works on token ids through a SequenceEncoder-like `encode`, so a tokenizer
 * worker can apply a template given only its name and the instruction.
 */

export const PROMPT_TEMPLATES = ['none', 'qwen3-reranker', 'mxbai-rerank-v2'] as const;
export type PromptTemplateName = (typeof PROMPT_TEMPLATES)[number];
export type PromptTemplateSetting = PromptTemplateName | 'auto';

export interface PromptOptions {
  template: PromptTemplateName;
  /** The task instruction; undefined takes the template's default (none for mxbai-rerank-v2). */
  instruction?: string;
}

/** What a template needs of a tokenizer: ids of a text (special tokens in it recognised), cut after `maxLength` when given. */
export interface TextEncoder {
  encodeText(text: string): number[];
  /**
   * At least the first `maxLength` ids of the text (or all of them), as Rust holds a sequence before
   * truncating it. Asked for one more than the room, so that a text longer than the room always shows
   * it (the encoder may stop exactly at the limit).
   */
  encodeSide(text: string, maxLength: number): number[];
}

export interface PromptEncoding {
  inputIds: number[];
  truncated: boolean;
}

// Qwen/Qwen3-Reranker-0.6B model card, "Transformers Usage": prefix, suffix, format_instruction's default.
const QWEN3_PREFIX =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n';
const QWEN3_SUFFIX = '<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n';
export const QWEN3_DEFAULT_INSTRUCTION = 'Given a web search query, retrieve relevant passages that answer the query';

// mixedbread-ai/mxbai-rerank, MxbaiRerankV2: sep, prompts, task prompt and chat template.
const MXBAI_SEP = '\n';
const MXBAI_TASK =
  'You are a search relevance expert who evaluates how well documents match search queries. For each query-document pair, carefully analyze the semantic relationship between them, then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:';
const MXBAI_PREFIX = '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n';
const MXBAI_SUFFIX = '<|im_end|>\n<|im_start|>assistant\n';

export function defaultInstruction(template: PromptTemplateName): string | null {
  return template === 'qwen3-reranker' ? QWEN3_DEFAULT_INSTRUCTION : null;
}

/**
 * `auto`: the template of the reranker family config.json names. Qwen3 and Qwen2 sequence
 * classifiers are, on the Hub, the seq-cls conversions of Qwen3-Reranker and mxbai-rerank-v2.
 */
export function resolvePromptTemplate(setting: PromptTemplateSetting | undefined, config: Record<string, unknown>): PromptTemplateName {
  if (setting !== undefined && setting !== 'auto') return setting;
  const architectures = Array.isArray(config.architectures) ? (config.architectures as unknown[]).map(String) : [];
  const seqCls = architectures.some((a) => a.endsWith('ForSequenceClassification'));
  if (!seqCls) return 'none';
  if (config.model_type === 'qwen3') return 'qwen3-reranker';
  if (config.model_type === 'qwen2') return 'mxbai-rerank-v2';
  return 'none';
}

/** Tokens the template takes whatever the pair: a max_length must leave room beyond them. */
export function templateOverhead(template: PromptTemplateName, tok: TextEncoder): number {
  if (template === 'qwen3-reranker') return tok.encodeText(QWEN3_PREFIX).length + tok.encodeText(QWEN3_SUFFIX).length;
  if (template === 'mxbai-rerank-v2') return [MXBAI_PREFIX, MXBAI_TASK, MXBAI_SUFFIX, MXBAI_SEP].reduce((n, t) => n + tok.encodeText(t).length, 0);
  return 0;
}

/** The ids of a pair inside the template, cut to `maxLength` where the template's reference code cuts. */
export function encodeWithPrompt(tok: TextEncoder, options: PromptOptions, query: string, document: string, maxLength: number): PromptEncoding {
  if (options.template === 'qwen3-reranker') {
    // process_inputs: the formatted text is one sequence, truncated at its end (the document's end)
    // to leave room for prefix and suffix, which are tokenized on their own.
    const instruction = options.instruction ?? QWEN3_DEFAULT_INSTRUCTION;
    const prefix = tok.encodeText(QWEN3_PREFIX);
    const suffix = tok.encodeText(QWEN3_SUFFIX);
    const room = maxLength - prefix.length - suffix.length;
    const body = tok.encodeSide(`<Instruct>: ${instruction}\n<Query>: ${query}\n<Document>: ${document}`, room + 1);
    return { inputIds: [...prefix, ...body.slice(0, room), ...suffix], truncated: body.length > room };
  }
  if (options.template === 'mxbai-rerank-v2') {
    // prepare_inputs: the query (with the instruction) gets at most 3/4 of the room, the document
    // (after a separator) the rest; the task prompt and the assistant turn always follow.
    const prefix = tok.encodeText(MXBAI_PREFIX);
    const sep = tok.encodeText(MXBAI_SEP);
    const task = tok.encodeText(MXBAI_TASK);
    const suffix = tok.encodeText(MXBAI_SUFFIX);
    const room = maxLength - prefix.length - task.length - suffix.length - sep.length;
    const queryText = options.instruction ? `instruction: ${options.instruction}${MXBAI_SEP}query: ${query}` : `query: ${query}`;
    const queryRoom = Math.floor((room * 3) / 4);
    const q = tok.encodeSide(queryText, queryRoom + 1);
    const d = tok.encodeSide(`document: ${document}`, room + 1);
    const qIds = q.slice(0, queryRoom);
    const second = [...sep, ...d.slice(0, room)];
    const secondRoom = room - qIds.length;
    const truncated = q.length > queryRoom || d.length > room || second.length > secondRoom;
    return { inputIds: [...prefix, ...qIds, ...second.slice(0, secondRoom), ...sep, ...task, ...suffix], truncated };
  }
  throw new Error(`encodeWithPrompt called without a prompt template`);
}

/**
 * Overlapping windows of a long document, each inside the template with the whole prompt
 * around it (rerank's long_documents: "chunk"). The document's ids are cut as a sequence of
 * their own, so a window's first token may differ from the one the unchunked text would give.
 */
export function encodeWindowsWithPrompt(
  tok: TextEncoder,
  options: PromptOptions,
  query: string,
  document: string,
  maxLength: number,
  overlap: number,
): PromptEncoding[] {
  const whole = encodeWithPrompt(tok, options, query, document, maxLength);
  if (!whole.truncated) return [whole];
  const empty = encodeWithPrompt(tok, options, query, '', maxLength);
  const d = tok.encodeText(document);
  // The room a document has beside this query: what the prompt with an empty document leaves.
  const window = Math.max(1, maxLength - empty.inputIds.length);
  const step = Math.max(1, window - Math.min(overlap, Math.floor(window / 2)));
  const marker = empty.inputIds;
  const cut = documentSlot(tok, options, query, maxLength);
  const windows: PromptEncoding[] = [];
  for (let start = 0; ; start += step) {
    const ids = [...marker.slice(0, cut), ...d.slice(start, start + window), ...marker.slice(cut)];
    windows.push({ inputIds: ids.slice(0, Math.max(maxLength, marker.length)), truncated: empty.truncated });
    if (start + window >= d.length) break;
  }
  return windows;
}

/** Where the document's ids go in the prompt with an empty document: after the document label. */
function documentSlot(tok: TextEncoder, options: PromptOptions, query: string, maxLength: number): number {
  const empty = encodeWithPrompt(tok, options, query, '', maxLength).inputIds;
  const tail =
    options.template === 'qwen3-reranker'
      ? tok.encodeText(QWEN3_SUFFIX).length
      : tok.encodeText(MXBAI_SEP).length + tok.encodeText(MXBAI_TASK).length + tok.encodeText(MXBAI_SUFFIX).length;
  return empty.length - tail;
}
