/**
 * Text to token ids the way the Rust `tokenizers` crate encodes one sequence, for the
 * tokenizer families whose every step is implemented here (and proven against Python):
 * added tokens → normalizer → pre-tokenizer → model, pre-token by pre-token.
 *
 * Rust stops tokenizing a sequence once its pre-tokens reach the truncation max_length
 * (`tokenize_with_limit`); what remains is what `longest_first` then shares out, so the
 * count matters whenever both sides of a pair are long. `encode(text, limit)` stops alike.
 */
import { AddedTokenMatcher, type AddedTokenSpec } from './added-tokens.js';
import { byteLevelBpeEncoder, isByteLevelBpe } from './bytelevel.js';
import { bertPreTokenize, createBertNormalizer, splitOnRustWhitespace } from './bert-normalizer.js';
import { PrecompiledNormalizer } from './precompiled.js';
import { UnigramModel } from './unigram.js';

export type TokenizerFamily = 'bert-wordpiece' | 'xlmr-unigram' | 'bytelevel-bpe';

export interface SequenceEncoder {
  /** Ids of `text`: all of them, or those of its pre-tokens up to the first one at which the count reaches `limit`. */
  encode(text: string, limit?: number): number[];
  /** Whitespace always ends a pre-token, so a text cut at whitespace tokenizes as a prefix of the whole. */
  readonly prefixSafe: boolean;
}

/** Thrown when a tokenizer.json is not one of the exact families; the message names what is not covered. */
export class UnsupportedTokenizer extends Error {}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

type Normalize = (text: string) => string;
type PreTokenize = (text: string, atStart: boolean) => string[];
type Model = (word: string) => number[];

function normalizerFrom(config: Json): Normalize | null {
  if (config == null) return null;
  switch (config.type) {
    case 'BertNormalizer':
      return createBertNormalizer(config);
    case 'Precompiled': {
      if (!config.precompiled_charsmap) return (t) => t;
      const p = new PrecompiledNormalizer(config.precompiled_charsmap);
      return (t) => p.normalize(t);
    }
    case 'Replace': {
      const content: string = config.content;
      if (typeof config.pattern?.String === 'string') {
        const s: string = config.pattern.String;
        return (t) => (s === '' ? t : t.split(s).join(content));
      }
      if (typeof config.pattern?.Regex === 'string') {
        const re = new RegExp(config.pattern.Regex, 'gu');
        return (t) => t.replace(re, () => content);
      }
      throw new UnsupportedTokenizer('Replace normalizer without a pattern');
    }
    case 'Sequence': {
      const steps = (config.normalizers as Json[]).map(normalizerFrom).filter((s): s is Normalize => s !== null);
      return (t) => steps.reduce((acc, step) => step(acc), t);
    }
    default:
      throw new UnsupportedTokenizer(`normalizer ${config.type}`);
  }
}

function metaspace(config: Json): PreTokenize {
  const replacement: string = config.replacement ?? '\u2581';
  // Older files say add_prefix_space instead of prepend_scheme.
  const scheme: string = config.prepend_scheme ?? (config.add_prefix_space === false ? 'never' : 'always');
  const split: boolean = config.split ?? true;
  return (text, atStart) => {
    let s = text.split(' ').join(replacement);
    if (!s.startsWith(replacement) && (scheme === 'always' || (scheme === 'first' && atStart))) s = replacement + s;
    if (!split) return s === '' ? [] : [s];
    // MergedWithNext: each replacement character starts a new piece.
    const pieces: string[] = [];
    let piece = '';
    for (const ch of s) {
      if (ch === replacement && piece !== '') {
        pieces.push(piece);
        piece = '';
      }
      piece += ch;
    }
    if (piece !== '') pieces.push(piece);
    return pieces;
  };
}

function preTokenizerFrom(config: Json): PreTokenize | null {
  if (config == null) return null;
  switch (config.type) {
    case 'BertPreTokenizer':
      return (t) => bertPreTokenize(t);
    case 'WhitespaceSplit':
      return (t) => splitOnRustWhitespace(t);
    case 'Metaspace':
      return metaspace(config);
    case 'Sequence': {
      const steps = (config.pretokenizers as Json[]).map(preTokenizerFrom).filter((s): s is PreTokenize => s !== null);
      return (text, atStart) => {
        // Each step splits the pieces of the one before; only the first piece still starts the text.
        let pieces = [text];
        for (const step of steps) pieces = pieces.flatMap((p, i) => step(p, atStart && i === 0));
        return pieces;
      };
    }
    default:
      throw new UnsupportedTokenizer(`pre_tokenizer ${config.type}`);
  }
}

function wordPiece(config: Json): Model {
  const vocab = new Map<string, number>(Object.entries(config.vocab as Record<string, number>));
  const unk = vocab.get(config.unk_token);
  if (unk === undefined) throw new UnsupportedTokenizer(`WordPiece unk_token ${config.unk_token} not in the vocabulary`);
  const prefix: string = config.continuing_subword_prefix ?? '##';
  const maxChars: number = config.max_input_chars_per_word ?? 100;
  return (word) => {
    const chars = Array.from(word);
    if (chars.length > maxChars) return [unk];
    const ids: number[] = [];
    for (let start = 0; start < chars.length; ) {
      let end = chars.length;
      let found: number | undefined;
      for (; end > start; end--) {
        const piece = (start > 0 ? prefix : '') + chars.slice(start, end).join('');
        found = vocab.get(piece);
        if (found !== undefined) break;
      }
      if (found === undefined) return [unk];
      ids.push(found);
      start = end;
    }
    return ids;
  };
}

function modelFrom(config: Json): Model {
  switch (config?.type) {
    case 'WordPiece':
      return wordPiece(config);
    case 'Unigram': {
      const m = new UnigramModel(config);
      return (w) => m.encode(w);
    }
    default:
      throw new UnsupportedTokenizer(`model ${config?.type ?? '(none)'}`);
  }
}

function familyOf(json: Json): TokenizerFamily {
  const model = json.model?.type;
  const norm = json.normalizer;
  const types = (n: Json): string[] => (n == null ? [] : n.type === 'Sequence' ? n.normalizers.flatMap(types) : [n.type]);
  const pre = json.pre_tokenizer;
  const preTypes = (p: Json): string[] => (p == null ? [] : p.type === 'Sequence' ? p.pretokenizers.flatMap(preTypes) : [p.type]);
  if (model === 'WordPiece' && norm?.type === 'BertNormalizer' && pre?.type === 'BertPreTokenizer') return 'bert-wordpiece';
  if (
    model === 'Unigram' &&
    types(norm).every((t) => t === 'Precompiled' || t === 'Replace') &&
    preTypes(pre).every((t) => t === 'Metaspace' || t === 'WhitespaceSplit') &&
    preTypes(pre).includes('Metaspace')
  ) {
    return 'xlmr-unigram';
  }
  throw new UnsupportedTokenizer(
    `${model ?? 'no'} model with ${types(norm).join('+') || 'no'} normalizer and ${preTypes(pre).join('+') || 'no'} pre-tokenizer`,
  );
}

/** The exact encoder for tokenizer.json, or UnsupportedTokenizer saying which part is not covered. */
export function exactEncoder(json: Json): SequenceEncoder & { family: TokenizerFamily } {
  if (isByteLevelBpe(json)) return byteLevelBpeEncoder(json);
  const family = familyOf(json);
  const normalize = normalizerFrom(json.normalizer);
  const preTokenize = preTokenizerFrom(json.pre_tokenizer) ?? ((t: string) => [t]);
  const model = modelFrom(json.model);
  const added: AddedTokenSpec[] = json.added_tokens ?? [];
  const raw = new AddedTokenMatcher(
    added.filter((t) => !t.normalized),
    (t) => t.content,
  );
  const normalizedTokens = added.filter((t) => t.normalized);
  const normalized = new AddedTokenMatcher(normalizedTokens, (t) => (normalize ? normalize(t.content) : t.content));

  return {
    family,
    prefixSafe: family === 'bert-wordpiece',
    encode(text: string, limit = Infinity): number[] {
      const ids: number[] = [];
      let atStart = true;
      for (const section of raw.split(text)) {
        if (ids.length >= limit) break;
        if ('id' in section) {
          ids.push(section.id);
          atStart = false;
          continue;
        }
        const norm = normalize ? normalize(section.text) : section.text;
        for (const sub of normalized.split(norm)) {
          if (ids.length >= limit) break;
          if ('id' in sub) {
            ids.push(sub.id);
            atStart = false;
            continue;
          }
          for (const word of preTokenize(sub.text, atStart)) {
            for (const id of model(word)) ids.push(id);
            if (ids.length >= limit) break;
          }
          atStart = false;
        }
      }
      return ids;
    },
  };
}
