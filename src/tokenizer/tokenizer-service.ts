/**
 * Tokenization as a service the model and the engine call asynchronously: in this thread
 * (the CLI, tests) or in worker threads (the server's TokenizerPool, src/engine/), with the
 * same jobs and results. A job is a bounded slice of one call; a call's jobs can be
 * cancelled together (over budget, client gone).
 */
import { createHash } from 'node:crypto';
import type { LowerBound, PairEncoding, PairTokenizer } from './pair-tokenizer.js';
import { readTokenizerFile } from './tokenizer-file.js';
import { PairTokenizer as PairTokenizerClass } from './pair-tokenizer.js';
import { PROMPT_TEMPLATES, templateOverhead, type PromptOptions, type PromptTemplateName } from './prompt-template.js';

export type WindowMode = 'truncate' | 'chunk';

export interface EncodeJob {
  pairs: { query: string; document: string }[];
  maxLength: number;
  mode: WindowMode;
  /** Tokens shared by neighbouring windows in chunk mode. */
  overlap: number;
  /** Stop once the job's windows hold more than this many tokens; 0: no limit. */
  limit: number;
  /** The prompt the pairs are put in (a plain object, so it crosses to a worker); none: raw pairs. */
  prompt?: PromptOptions;
}

export interface EncodeResult {
  /** The windows of each pair encoded, in order: all pairs, or those before the limit was passed. */
  windows: PairEncoding[][];
  /** Tokens in those windows; over the limit when `over`. */
  tokens: number;
  over: boolean;
}

export interface TokenizerDescription {
  family: string;
  verified: boolean;
  /** Special tokens the pair template adds. */
  addedTokens: number;
  /** sha256 of tokenizer.json as read, for the model fingerprint. */
  fileHash: string;
  /** Tokens each prompt template adds around a pair, beside the special tokens. */
  promptOverheads: Record<PromptTemplateName, number>;
  /** The id of tokenizer_config's pad token, when it names one the tokenizer has. */
  padTokenId?: number;
  /** How PairTokenizer.leastTokensOf bounds a text's tokens for this tokenizer, before any is tokenized. */
  lowerBound: LowerBound;
}

export interface TokenizerCall {
  encode(job: EncodeJob): Promise<EncodeResult>;
  /** sha256 (base64url) of each text. */
  hash(texts: string[]): Promise<string[]>;
  /** Drops this call's jobs not yet started; their promises reject with `reason`. */
  cancel(reason: Error): void;
}

export interface TokenizerService {
  readonly description: TokenizerDescription;
  /** Jobs that can run at the same time. */
  readonly parallelism: number;
  call(): TokenizerCall;
  close(): Promise<void>;
}

export const textHash = (text: string): string => createHash('sha256').update(text).digest('base64url');

export function runEncodeJob(tokenizer: PairTokenizer, job: EncodeJob): EncodeResult {
  const windows: PairEncoding[][] = [];
  let tokens = 0;
  for (const { query, document } of job.pairs) {
    let encoded: PairEncoding[] | null;
    if (job.mode === 'chunk') {
      encoded = tokenizer.encodeWindows(query, document, job.maxLength, job.overlap, job.prompt, job.limit > 0 ? job.limit - tokens : Infinity);
      // The document alone has more tokens than the budget left: its windows hold at least as many.
      if (encoded === null) return { windows, tokens: job.limit + 1, over: true };
    } else {
      encoded = [tokenizer.encodePair(query, document, job.maxLength, job.prompt)];
    }
    for (const w of encoded) tokens += w.inputIds.length;
    windows.push(encoded);
    if (job.limit > 0 && tokens > job.limit) return { windows, tokens, over: true };
  }
  return { windows, tokens, over: false };
}

export function describeTokenizer(tokenizer: PairTokenizer, fileHash: string, padTokenId?: number): TokenizerDescription {
  const promptOverheads = Object.fromEntries(PROMPT_TEMPLATES.map((t) => [t, templateOverhead(t, tokenizer)])) as Record<PromptTemplateName, number>;
  return { family: tokenizer.family, verified: tokenizer.verified, lowerBound: tokenizer.lowerBound, addedTokens: tokenizer.template.addedTokens, fileHash, promptOverheads, ...(padTokenId === undefined ? {} : { padTokenId }) };
}

/** The id of tokenizer_config's pad token in the tokenizer's added tokens or vocabulary. */
function padTokenIdOf(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>): number | undefined {
  const pad = tokenizerConfig.pad_token;
  const padText = typeof pad === 'string' ? pad : typeof (pad as { content?: unknown })?.content === 'string' ? (pad as { content: string }).content : undefined;
  if (padText === undefined) return undefined;
  const added = (tokenizerJson.added_tokens as { id: number; content: string }[] | undefined) ?? [];
  const found = added.find((t) => t.content === padText);
  if (found) return found.id;
  const vocab = (tokenizerJson.model as { vocab?: unknown } | undefined)?.vocab;
  if (vocab && !Array.isArray(vocab) && typeof (vocab as Record<string, unknown>)[padText] === 'number') return (vocab as Record<string, number>)[padText];
  return undefined;
}

/** Reads and parses the tokenizer files: what a worker does at start, or the in-thread service. */
export function loadTokenizerFiles(tokenizerPath: string, tokenizerConfigPath: string | null): { tokenizer: PairTokenizer; description: TokenizerDescription } {
  const bytes = readTokenizerFile(tokenizerPath);
  const fileHash = createHash('sha256').update(bytes).digest('base64url');
  let tokenizer: PairTokenizer;
  let padTokenId: number | undefined;
  try {
    const config = tokenizerConfigPath ? JSON.parse(readTokenizerFile(tokenizerConfigPath).toString('utf8')) : {};
    const json = JSON.parse(bytes.toString('utf8'));
    tokenizer = new PairTokenizerClass(json, config);
    padTokenId = padTokenIdOf(json, config);
  } catch (err) {
    throw new Error(`${tokenizerPath}: ${(err as Error).message}`);
  }
  return { tokenizer, description: describeTokenizer(tokenizer, fileHash, padTokenId) };
}

/** Tokenization on the calling thread: for the CLI and tests, where nothing else waits. */
export class InThreadTokenizer implements TokenizerService {
  readonly parallelism = 1;
  constructor(
    readonly tokenizer: PairTokenizer,
    readonly description: TokenizerDescription,
  ) {}

  static fromFiles(tokenizerPath: string, tokenizerConfigPath: string | null): InThreadTokenizer {
    const { tokenizer, description } = loadTokenizerFiles(tokenizerPath, tokenizerConfigPath);
    return new InThreadTokenizer(tokenizer, description);
  }

  call(): TokenizerCall {
    let cancelled: Error | undefined;
    return {
      encode: async (job) => {
        if (cancelled) throw cancelled;
        return runEncodeJob(this.tokenizer, job);
      },
      hash: async (texts) => {
        if (cancelled) throw cancelled;
        return texts.map(textHash);
      },
      cancel: (reason) => {
        cancelled = reason;
      },
    };
  }

  async close(): Promise<void> {}
}
