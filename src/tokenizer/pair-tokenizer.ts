/**
 * Pair encoding for a cross-encoder: tokenizers.js does the word-level work, this module
 * adds what it lacks (pair truncation, a Rust-faithful BERT normalizer) so that the ids equal
 * those of Python's fast tokenizer with `truncation=True, max_length=N`.
 */
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { createBertNormalizer } from './bert-normalizer.js';
import { longestFirstLengths } from './truncation.js';
import { pairTemplateFrom, type PairTemplate } from './pair-template.js';

export interface PairEncoding {
  inputIds: number[];
  typeIds: number[];
  truncated: boolean;
}

// Whitespace always ends a pre-token for these pre-tokenizers and normalizers, so the tokens
// of a text cut at a whitespace are a prefix of the tokens of the whole text.
const PREFIX_SAFE_PRE_TOKENIZERS = new Set(['BertPreTokenizer', 'Whitespace', 'WhitespaceSplit']);
const MIN_PREFIX_CHARS = 4096;

export class PairTokenizer {
  readonly template: PairTemplate;
  private readonly tokenizer: Tokenizer;
  private readonly prefixSafe: boolean;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>) {
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const normalizer = tokenizerJson.normalizer as any;
    if (normalizer?.type === 'BertNormalizer') {
      // tokenizers.js calls its normalizer as a function; ours replaces it.
      (this.tokenizer as unknown as { normalizer: unknown }).normalizer = createBertNormalizer(normalizer);
    }
    this.template = pairTemplateFrom(tokenizerJson.post_processor);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const preTokenizer = (tokenizerJson.pre_tokenizer as any)?.type;
    this.prefixSafe = PREFIX_SAFE_PRE_TOKENIZERS.has(preTokenizer) && (normalizer == null || normalizer.type === 'BertNormalizer');
  }

  static fromFiles(tokenizerPath: string, tokenizerConfigPath: string | null): PairTokenizer {
    const json = JSON.parse(readFileSync(tokenizerPath, 'utf8'));
    const config = tokenizerConfigPath ? JSON.parse(readFileSync(tokenizerConfigPath, 'utf8')) : {};
    return new PairTokenizer(json, config);
  }

  /** Token ids of one text, no special tokens. */
  encodeText(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Token ids of at least the first `atLeast` tokens of `text`, without tokenizing a
   * 100 000-character document whose first few hundred tokens are all we keep.
   * `complete` says whether these are all of the text's tokens.
   */
  encodeTextPrefix(text: string, atLeast: number): { ids: number[]; complete: boolean } {
    if (this.prefixSafe) {
      for (let chars = Math.max(MIN_PREFIX_CHARS, atLeast * 8); chars < text.length; chars *= 2) {
        const cut = text.slice(chars).search(/\s/);
        if (cut < 0) break;
        const ids = this.encodeText(text.slice(0, chars + cut));
        if (ids.length >= atLeast) return { ids, complete: false };
      }
    }
    return { ids: this.encodeText(text), complete: true };
  }

  /** Room for query and document tokens together under `maxLength`. */
  budget(maxLength: number): number {
    return maxLength - this.template.addedTokens;
  }

  encodePair(query: string, document: string, maxLength: number): PairEncoding {
    const budget = this.budget(maxLength);
    // Any length above the budget truncates alike, except that when both sides are cut to
    // half the budget an odd token goes to the longer one: only then are full lengths needed.
    let a = this.encodeTextPrefix(query, budget + 1);
    let b = this.encodeTextPrefix(document, budget + 1);
    if (a.ids.length > budget / 2 && b.ids.length > budget / 2) {
      if (!a.complete) a = { ids: this.encodeText(query), complete: true };
      if (!b.complete) b = { ids: this.encodeText(document), complete: true };
    }
    return this.assembleTruncated(a.ids, b.ids, budget);
  }

  /**
   * A pair whose document does not fit next to the query, as overlapping windows of the
   * document's tokens, each with the query; a pair that fits is one window, encoded exactly
   * as encodePair does. The query keeps at most half the budget, as longest_first would
   * leave it against a long document.
   */
  encodeWindows(query: string, document: string, maxLength: number, overlap: number): PairEncoding[] {
    const budget = this.budget(maxLength);
    const q = this.encodeTextPrefix(query, budget + 1).ids;
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

  assembleTruncated(a: number[], b: number[], budget: number): PairEncoding {
    const [lenA, lenB] = longestFirstLengths(a.length, b.length, budget);
    const truncated = lenA < a.length || lenB < b.length;
    const { inputIds, typeIds } = this.template.assemble(truncated ? a.slice(0, lenA) : a, truncated ? b.slice(0, lenB) : b);
    return { inputIds, typeIds, truncated };
  }
}
