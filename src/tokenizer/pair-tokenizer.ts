/**
 * Pair encoding for a cross-encoder, with the ids of Python's fast tokenizer called as
 * CrossEncoder.predict calls it (`truncation=True, max_length=N`, strategy longest_first).
 *
 * Families whose every step is implemented in this folder (pipeline.ts: BERT WordPiece,
 * XLM-R SentencePiece Unigram) are encoded here, proven against Python on all of Unicode.
 * Any other tokenizer.json goes through tokenizers.js and is reported as unverified.
 */
import { readTokenizerFile } from './tokenizer-file.js';
import { Tokenizer } from '@huggingface/tokenizers';
import { bertPreTokenize, createBertNormalizer } from './bert-normalizer.js';
import { asTransformersLoads, splitsAtWhitespace } from './bytelevel.js';
import { exactEncoder, UnsupportedTokenizer, type SequenceEncoder, type TokenizerFamily } from './pipeline.js';
import { longestFirstLengths } from './truncation.js';
import { pairTemplateFrom, type PairTemplate } from './pair-template.js';
import { encodeWindowsWithPrompt, encodeWithPrompt, type PromptOptions } from './prompt-template.js';

export interface PairEncoding {
  inputIds: number[];
  typeIds: number[];
  truncated: boolean;
}

const MIN_PREFIX_CHARS = 4096;
const RUST_WHITESPACE = /\p{White_Space}/u;

/**
 * What leastTokens counts: runs of text between `whitespace` (space, tab, line ends) or between
 * `spaces` only that hold an ASCII letter or digit; `none`: no bound is known (0).
 */
export type LowerBound = 'whitespace' | 'spaces' | 'none';

export class PairTokenizer {
  readonly template: PairTemplate;
  /** The family this tokenizer was proven on, or `unverified: …` naming what is not covered. */
  readonly family: TokenizerFamily | `unverified: ${string}`;
  readonly verified: boolean;
  /** How leastTokens bounds this tokenizer's count from below. */
  readonly lowerBound: LowerBound;
  private readonly encoder: SequenceEncoder;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>) {
    this.template = pairTemplateFrom(tokenizerJson.post_processor);
    let encoder: SequenceEncoder;
    let bound: LowerBound = 'none';
    try {
      const loaded = asTransformersLoads(tokenizerJson, tokenizerConfig);
      const exact = exactEncoder(loaded);
      encoder = exact;
      this.family = exact.family;
      this.verified = true;
      bound = lowerBoundOf(exact.family, loaded);
    } catch (err) {
      if (!(err instanceof UnsupportedTokenizer)) throw err;
      encoder = fallbackEncoder(tokenizerJson, tokenizerConfig);
      this.family = `unverified: ${err.message}`;
      this.verified = false;
    }
    this.encoder = encoder;
    this.lowerBound = bound;
    // The reasoning behind the family's bound, checked on this file's normalizer and vocabulary.
    if (bound !== 'none' && BOUND_PROBES.some((t) => PairTokenizer.leastTokensOf(t, Infinity, bound) > encoder.encode(t).length)) this.lowerBound = 'none';
  }

  static fromFiles(tokenizerPath: string, tokenizerConfigPath: string | null): PairTokenizer {
    const json = JSON.parse(readTokenizerFile(tokenizerPath).toString('utf8'));
    const config = tokenizerConfigPath ? JSON.parse(readTokenizerFile(tokenizerConfigPath).toString('utf8')) : {};
    return new PairTokenizer(json, config);
  }

  /** Token ids of one text, no special tokens. */
  encodeText(text: string): number[] {
    return this.encoder.encode(text);
  }

  /**
   * The ids Rust keeps of one side of a pair before truncating it: those of its pre-tokens up
   * to the one at which the count reaches `maxLength`. A long text is tokenized from a prefix
   * cut at whitespace when that is the same thing, not whole.
   */
  encodeSide(text: string, maxLength: number): number[] {
    if (this.encoder.prefixSafe) {
      for (let chars = Math.max(MIN_PREFIX_CHARS, maxLength * 8); chars < text.length; chars *= 2) {
        const cut = text.slice(chars).search(RUST_WHITESPACE);
        if (cut < 0) break;
        const ids = this.encoder.encode(text.slice(0, chars + cut), maxLength);
        if (ids.length >= maxLength) return ids;
      }
    }
    return this.encoder.encode(text, maxLength);
  }

  /**
   * A lower bound on the tokens of `text`, counted up to `stopAbove` + 1 in one cheap pass, so
   * an over-budget document is refused without tokenizing the ~100 characters per token that
   * hostile text takes. A run between separators that holds an ASCII letter or digit keeps a
   * character after normalization, and no token (nor pre-token) spans two runs, so each run is
   * at least one token of its own. BERT: its pre-tokenizer splits at whitespace and punctuation.
   * XLM-R (Unigram): Metaspace splits at spaces only (tabs and line ends count only if its
   * normalizer maps them to spaces), so runs are cut at spaces. Byte-level BPE: the GPT-2 and
   * Qwen2 patterns never put two runs' letters or digits in one pre-token (splitsAtWhitespace).
   */
  leastTokens(text: string, stopAbove: number): number {
    return PairTokenizer.leastTokensOf(text, stopAbove, this.lowerBound);
  }

  /** leastTokens for a tokenizer whose lowerBound is `bound`. */
  static leastTokensOf(text: string, stopAbove: number, bound: LowerBound): number {
    if (bound === 'none') return 0;
    const tabsToo = bound === 'whitespace';
    let count = 0;
    let counted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || (tabsToo && (c === 0x09 || c === 0x0a || c === 0x0d))) counted = false;
      else if (!counted && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a))) {
        counted = true;
        if (++count > stopAbove) return count;
      }
    }
    return count;
  }

  /** Room for query and document tokens together under `maxLength`. */
  budget(maxLength: number): number {
    return maxLength - this.template.addedTokens;
  }

  /** The pair as the model sees it; with a prompt template, inside that prompt (see prompt-template.ts). */
  encodePair(query: string, document: string, maxLength: number, prompt?: PromptOptions): PairEncoding {
    if (prompt && prompt.template !== 'none') {
      const { inputIds, truncated } = encodeWithPrompt(this, prompt, query, document, maxLength);
      return { inputIds, typeIds: new Array<number>(inputIds.length).fill(0), truncated };
    }
    const a = this.encodeSide(query, maxLength);
    const b = this.encodeSide(document, maxLength);
    return this.assembleTruncated(a, b, this.budget(maxLength));
  }

  /**
   * A pair whose document does not fit next to the query, as overlapping windows of the
   * document's tokens, each with the query; a pair that fits is one window, encoded exactly
   * as encodePair does. The query keeps at most half the budget, as longest_first would
   * leave it against a long document.
   */
  encodeWindows(query: string, document: string, maxLength: number, overlap: number, prompt?: PromptOptions): PairEncoding[];
  /** The same, or null as soon as the document alone has more than `limit` tokens (tokenized no further). */
  encodeWindows(query: string, document: string, maxLength: number, overlap: number, prompt: PromptOptions | undefined, limit: number): PairEncoding[] | null;
  encodeWindows(query: string, document: string, maxLength: number, overlap: number, prompt?: PromptOptions, limit = Infinity): PairEncoding[] | null {
    if (Number.isFinite(limit) && this.leastTokens(document, limit) > limit) return null;
    if (prompt && prompt.template !== 'none') {
      return encodeWindowsWithPrompt(this, prompt, query, document, maxLength, overlap).map(({ inputIds, truncated }) => ({
        inputIds,
        typeIds: new Array<number>(inputIds.length).fill(0),
        truncated,
      }));
    }
    const budget = this.budget(maxLength);
    const q = this.encodeSide(query, maxLength);
    const d = Number.isFinite(limit) ? this.encodeSide(document, limit + 1) : this.encodeText(document);
    if (d.length > limit) return null;
    if (q.length + d.length <= budget) return [this.assembleTruncated(q, d, budget)];
    const queryIds = q.slice(0, Math.min(q.length, Math.max(budget - d.length, Math.floor(budget / 2))));
    const window = budget - queryIds.length;
    const step = Math.max(1, window - Math.min(overlap, Math.floor(window / 2)));
    const windows: PairEncoding[] = [];
    for (let start = 0; ; start += step) {
      const { inputIds, typeIds } = this.template.assemble(queryIds, d.slice(start, start + window));
      windows.push({ inputIds, typeIds, truncated: queryIds.length < q.length });
      if (start + window >= d.length) break;
    }
    return windows;
  }

  /** `a` and `b` as Rust holds them before truncation (see encodeSide), cut by longest_first and put in the template. */
  assembleTruncated(a: number[], b: number[], budget: number): PairEncoding {
    const [lenA, lenB] = longestFirstLengths(a.length, b.length, budget);
    const truncated = lenA < a.length || lenB < b.length;
    const { inputIds, typeIds } = this.template.assemble(truncated ? a.slice(0, lenA) : a, truncated ? b.slice(0, lenB) : b);
    return { inputIds, typeIds, truncated };
  }
}

/** tokenizers.js for tokenizer.json files outside the proven families, with what we know to be closer to Rust. */
function fallbackEncoder(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>): SequenceEncoder {
  const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const json = tokenizerJson as any;
  if (json.normalizer?.type === 'BertNormalizer') {
    // tokenizers.js calls its normalizer as a function; ours replaces it.
    (tokenizer as unknown as { normalizer: unknown }).normalizer = createBertNormalizer(json.normalizer);
  }
  if (json.pre_tokenizer?.type === 'BertPreTokenizer') {
    (tokenizer as unknown as { pre_tokenizer: unknown }).pre_tokenizer = bertPreTokenize;
  }
  return {
    prefixSafe: false,
    encode: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function lowerBoundOf(family: TokenizerFamily, json: any): LowerBound {
  // An added token with a separator inside could take two runs as one token.
  const added: { content?: unknown }[] = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  if (added.some((t) => typeof t.content === 'string' && /[ \t\n\r]/.test(t.content))) return 'none';
  switch (family) {
    case 'bert-wordpiece':
      return 'whitespace';
    case 'xlmr-unigram': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const steps = (p: any): any[] => (p == null ? [] : p.type === 'Sequence' ? p.pretokenizers.flatMap(steps) : [p]);
      return steps(json.pre_tokenizer).every((p) => p.type !== 'Metaspace' || p.split !== false) ? 'spaces' : 'none';
    }
    case 'bytelevel-bpe':
      return splitsAtWhitespace(json) ? 'whitespace' : 'none';
  }
}

const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Texts on which a family's bound is checked against the real count when a tokenizer loads. */
const BOUND_PROBES = [
  ...[' ', '\t', '\n', '\r\n', '  ', ' \u200b ', '\u00a0 '].map((sep) => [...ALNUM].join(sep)),
  "it's a b'c d.e f-g 1,2 3 x\u0301 y\u0308z (q) [r] <s> \u00e9a \uff41 \u2581 \u2581a a\u2581 b\u00ad c\u0000 d\ufeff",
];
