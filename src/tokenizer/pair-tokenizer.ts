/**
 * Pair encoding for a cross-encoder, with the ids of Python's fast tokenizer called as
 * CrossEncoder.predict calls it (`truncation=True, max_length=N`, strategy longest_first).
 *
 * Families whose every step is implemented in this folder (pipeline.ts: BERT WordPiece,
 * XLM-R SentencePiece Unigram) are encoded here, proven against Python on all of Unicode.
 * Any other tokenizer.json goes through tokenizers.js and is reported as unverified.
 */
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { bertPreTokenize, createBertNormalizer } from './bert-normalizer.js';
import { asTransformersLoads } from './bytelevel.js';
import { exactEncoder, UnsupportedTokenizer, type SequenceEncoder, type TokenizerFamily } from './pipeline.js';
import { longestFirstLengths } from './truncation.js';
import { pairTemplateFrom, type PairTemplate } from './pair-template.js';

export interface PairEncoding {
  inputIds: number[];
  typeIds: number[];
  truncated: boolean;
}

const MIN_PREFIX_CHARS = 4096;
const RUST_WHITESPACE = /\p{White_Space}/u;

export class PairTokenizer {
  readonly template: PairTemplate;
  /** The family this tokenizer was proven on, or `unverified: …` naming what is not covered. */
  readonly family: TokenizerFamily | `unverified: ${string}`;
  readonly verified: boolean;
  private readonly encoder: SequenceEncoder;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>) {
    this.template = pairTemplateFrom(tokenizerJson.post_processor);
    let encoder: SequenceEncoder;
    try {
      const exact = exactEncoder(asTransformersLoads(tokenizerJson, tokenizerConfig));
      encoder = exact;
      this.family = exact.family;
      this.verified = true;
    } catch (err) {
      if (!(err instanceof UnsupportedTokenizer)) throw err;
      encoder = fallbackEncoder(tokenizerJson, tokenizerConfig);
      this.family = `unverified: ${err.message}`;
      this.verified = false;
    }
    this.encoder = encoder;
  }

  static fromFiles(tokenizerPath: string, tokenizerConfigPath: string | null): PairTokenizer {
    const json = JSON.parse(readFileSync(tokenizerPath, 'utf8'));
    const config = tokenizerConfigPath ? JSON.parse(readFileSync(tokenizerConfigPath, 'utf8')) : {};
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

  /** Room for query and document tokens together under `maxLength`. */
  budget(maxLength: number): number {
    return maxLength - this.template.addedTokens;
  }

  encodePair(query: string, document: string, maxLength: number): PairEncoding {
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
  encodeWindows(query: string, document: string, maxLength: number, overlap: number): PairEncoding[] {
    const budget = this.budget(maxLength);
    const q = this.encodeSide(query, maxLength);
    const d = this.encodeText(document);
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
