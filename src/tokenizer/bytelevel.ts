/**
 * The byte-level BPE family (GPT-2 lineage: Qwen2/Qwen3 rerankers, mxbai-rerank-v2,
 * ModernBERT), step by step as the Rust crate runs it:
 *
 *   added tokens (raw) → normalizer (NFC, NFD, Replace, Prepend, Sequence) → added tokens
 *   (normalized) → pre-tokenizers (Split with the model's own regex, ByteLevel with or
 *   without the GPT-2 regex and add_prefix_space, Sequence) → BPE per pre-token.
 *
 * ByteLevel maps every UTF-8 byte of a pre-token to one printable character, so the BPE
 * vocabulary never misses a character; its add_prefix_space applies to every piece it gets,
 * that is to each stretch of text between added tokens (and after earlier splits).
 */
import { AddedTokenMatcher, type AddedTokenSpec } from './added-tokens.js';
import { BpeConfigError, BpeModel } from './bpe.js';
import { nfcRust } from './nfc.js';
import { findMatches, literalRegExp, onigRegExp, UnsupportedPattern } from './onig-regex.js';
import { UnsupportedTokenizer, type SequenceEncoder } from './pipeline.js';
import { nfdRust } from './rust-unicode.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

type Normalize = (text: string) => string;
/** Splits each piece into the next pieces; pieces are never empty. */
type PreTokenize = (pieces: string[]) => string[];

const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others move to U+0100 onwards. */
const BYTE_CHARS: string[] = (() => {
  const chars: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCodePoint(printable ? b : 256 + shifted++);
  }
  return chars;
})();

/** The UTF-8 bytes of `text`, each as its ByteLevel character (a lone surrogate is U+FFFD, as in any UTF-8 encoder). */
function byteLevelChars(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp < 0x80) {
      out += BYTE_CHARS[cp];
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const low = text.charCodeAt(i + 1);
      if (cp <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else {
        cp = 0xfffd;
      }
    }
    if (cp < 0x800) out += BYTE_CHARS[0xc0 | (cp >> 6)] + BYTE_CHARS[0x80 | (cp & 0x3f)];
    else if (cp < 0x10000) out += BYTE_CHARS[0xe0 | (cp >> 12)] + BYTE_CHARS[0x80 | ((cp >> 6) & 0x3f)] + BYTE_CHARS[0x80 | (cp & 0x3f)];
    else out += BYTE_CHARS[0xf0 | (cp >> 18)] + BYTE_CHARS[0x80 | ((cp >> 12) & 0x3f)] + BYTE_CHARS[0x80 | ((cp >> 6) & 0x3f)] + BYTE_CHARS[0x80 | (cp & 0x3f)];
  }
  return out;
}

function regexFor(pattern: Json, where: string): RegExp {
  try {
    if (typeof pattern?.String === 'string') return literalRegExp(pattern.String);
    if (typeof pattern?.Regex === 'string') return onigRegExp(pattern.Regex);
  } catch (err) {
    if (err instanceof UnsupportedPattern) throw new UnsupportedTokenizer(`${where} pattern: ${err.message}`);
    throw err;
  }
  throw new UnsupportedTokenizer(`${where} without a pattern`);
}

function normalizerFrom(config: Json): Normalize | null {
  if (config == null) return null;
  switch (config.type) {
    case 'NFC':
      return nfcRust;
    case 'NFD':
      return nfdRust;
    case 'Replace': {
      const re = regexFor(config.pattern, 'Replace');
      const content: string = config.content;
      return (t) => {
        let out = '';
        for (const [start, end, match] of findMatches(re, t)) out += match ? content : t.slice(start, end);
        return out;
      };
    }
    case 'Prepend': {
      const prefix: string = config.prepend;
      return (t) => (t === '' ? t : prefix + t);
    }
    case 'Sequence': {
      const steps = (config.normalizers as Json[]).map(normalizerFrom).filter((s): s is Normalize => s !== null);
      return (t) => steps.reduce((acc, step) => step(acc), t);
    }
    default:
      throw new UnsupportedTokenizer(`normalizer ${config.type}`);
  }
}

/** The crate's NormalizedString::split with a SplitDelimiterBehavior, on find_matches' pieces. */
function splitPieces(text: string, re: RegExp, behavior: string, invert: boolean): string[] {
  if (behavior === 'Isolated') {
    // Matches and the text between them, all kept: the common case, without the bookkeeping.
    const out: string[] = [];
    let prev = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const end = m.index + m[0].length;
      if (end === m.index) re.lastIndex = m.index + (text.codePointAt(m.index)! > 0xffff ? 2 : 1);
      if (prev !== m.index) out.push(text.slice(prev, m.index));
      if (end > m.index) out.push(m[0]);
      prev = end;
    }
    if (prev < text.length) out.push(text.slice(prev));
    return out;
  }
  const matches = findMatches(re, text).map(([s, e, m]): [number, number, boolean] => [s, e, invert ? !m : m]);
  let spans: [number, number][];
  switch (behavior) {
    case 'Isolated':
      spans = matches.map(([s, e]) => [s, e]);
      break;
    case 'Removed':
      spans = matches.filter(([, , m]) => !m).map(([s, e]) => [s, e]);
      break;
    case 'Contiguous':
    case 'MergedWithPrevious': {
      spans = [];
      let previous = false;
      for (const [s, e, m] of matches) {
        const merge = behavior === 'Contiguous' ? m === previous : m && !previous;
        if (merge && spans.length) spans[spans.length - 1][1] = e;
        else spans.push([s, e]);
        previous = m;
      }
      break;
    }
    case 'MergedWithNext': {
      spans = [];
      let previous = false;
      for (let k = matches.length - 1; k >= 0; k--) {
        const [s, e, m] = matches[k];
        if (m && !previous && spans.length) spans[spans.length - 1][0] = s;
        else spans.push([s, e]);
        previous = m;
      }
      spans.reverse();
      break;
    }
    default:
      throw new UnsupportedTokenizer(`Split behavior ${behavior}`);
  }
  return spans.filter(([s, e]) => e > s).map(([s, e]) => text.slice(s, e));
}

function preTokenizerFrom(config: Json): PreTokenize | null {
  if (config == null) return null;
  switch (config.type) {
    case 'Split': {
      const re = regexFor(config.pattern, 'Split');
      const behavior: string = config.behavior;
      const invert: boolean = config.invert ?? false;
      splitPieces('', re, behavior, invert); // rejects an unknown behavior at load
      return (pieces) => {
        const out: string[] = [];
        for (const p of pieces) for (const part of splitPieces(p, re, behavior, invert)) out.push(part);
        return out;
      };
    }
    case 'ByteLevel': {
      const addPrefixSpace: boolean = config.add_prefix_space ?? true;
      const useRegex: boolean = config.use_regex ?? true;
      const re = useRegex ? onigRegExp(GPT2_PATTERN) : null;
      return (pieces) => {
        const out: string[] = [];
        for (const p of pieces) {
          const spaced = addPrefixSpace && !p.startsWith(' ') ? ' ' + p : p;
          if (!re) {
            if (spaced !== '') out.push(byteLevelChars(spaced));
            continue;
          }
          for (const part of splitPieces(spaced, re, 'Isolated', false)) out.push(byteLevelChars(part));
        }
        return out;
      };
    }
    case 'Sequence': {
      const steps = (config.pretokenizers as Json[]).map(preTokenizerFrom).filter((s): s is PreTokenize => s !== null);
      return (pieces) => steps.reduce((acc, step) => step(acc), pieces);
    }
    default:
      throw new UnsupportedTokenizer(`pre_tokenizer ${config.type}`);
  }
}

function preTokenizerTypes(p: Json): string[] {
  return p == null ? [] : p.type === 'Sequence' ? p.pretokenizers.flatMap(preTokenizerTypes) : [p.type];
}

/**
 * Whether every pre-token of this pipeline holds letters or digits of at most one whitespace-
 * separated run of the text, which makes leastTokens (pair-tokenizer.ts) a lower bound: true for
 * NFC (or no normalizer) and the GPT-2 or Qwen2 split, whose alternatives put whitespace only
 * before a word's letters or among whitespace and punctuation. Other patterns are not analysed.
 */
export function splitsAtWhitespace(json: Json): boolean {
  if (json.normalizer != null && json.normalizer.type !== 'NFC') return false;
  const pre = json.pre_tokenizer;
  if (pre?.type === 'ByteLevel') return pre.use_regex !== false;
  if (pre?.type !== 'Sequence' || pre.pretokenizers.length !== 2) return false;
  const [split, byteLevel] = pre.pretokenizers;
  return split.type === 'Split' && [GPT2_PATTERN, QWEN2_PATTERN].includes(split.pattern?.Regex) && split.behavior === 'Isolated' && !split.invert && byteLevel.type === 'ByteLevel';
}

/** Whether tokenizer.json belongs to this family (a BPE model behind a ByteLevel pre-tokenizer). */
export function isByteLevelBpe(json: Json): boolean {
  return json.model?.type === 'BPE' && preTokenizerTypes(json.pre_tokenizer).includes('ByteLevel');
}

export function byteLevelBpeEncoder(json: Json): SequenceEncoder & { family: 'bytelevel-bpe' } {
  if (!isByteLevelBpe(json)) throw new UnsupportedTokenizer(`${json.model?.type ?? 'no'} model without a ByteLevel pre-tokenizer`);
  const normalize = normalizerFrom(json.normalizer);
  const preTokenize = preTokenizerFrom(json.pre_tokenizer)!;
  let model: BpeModel;
  try {
    model = new BpeModel(json.model);
  } catch (err) {
    if (err instanceof BpeConfigError) throw new UnsupportedTokenizer(err.message);
    throw err;
  }
  const added: AddedTokenSpec[] = json.added_tokens ?? [];
  const raw = new AddedTokenMatcher(
    added.filter((t) => !t.normalized),
    (t) => t.content,
  );
  const normalized = new AddedTokenMatcher(
    added.filter((t) => t.normalized),
    (t) => (normalize ? normalize(t.content) : t.content),
  );

  return {
    family: 'bytelevel-bpe',
    // The pattern's lookahead and whitespace runs tie a piece to what follows it, so a text
    // cut short may end in other pieces than the whole: the whole text is normalized and split
    // (linear), and only BPE stops at the limit.
    prefixSafe: false,
    encode(text: string, limit = Infinity): number[] {
      // Rust's tokenize_with_limit: added tokens count but never stop it; it stops after the
      // pre-token at which the count reaches the limit.
      const ids: number[] = [];
      for (const section of raw.split(text)) {
        if ('id' in section) {
          ids.push(section.id);
          continue;
        }
        const norm = normalize ? normalize(section.text) : section.text;
        for (const sub of normalized.split(norm)) {
          if ('id' in sub) {
            ids.push(sub.id);
            continue;
          }
          for (const word of preTokenize([sub.text])) {
            for (const id of model.encode(word)) ids.push(id);
            if (ids.length >= limit) return ids;
          }
        }
      }
      return ids;
    },
  };
}

const QWEN2_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** tokenizer_class values under which transformers 5 loads tokenizer.json as it is. */
const AS_IS_CLASSES = new Set(['PreTrainedTokenizer', 'PreTrainedTokenizerFast', 'TokenizersBackend']);

/**
 * The byte-level tokenizer.json the way transformers 5 (what sentence-transformers 6 calls)
 * runs it. A tokenizer class with its own constructor keeps only the vocabulary, merges,
 * added tokens and post-processor of the file and rebuilds the rest: Qwen2Tokenizer (Qwen2,
 * Qwen3, mxbai-rerank-v2) always uses NFC, the Qwen2 pattern and a plain BPE, whatever the
 * file says. Other such classes (GPT2Tokenizer, RobertaTokenizer, ...) are not modelled, so
 * their tokenizers stay unverified. Other families pass through unchanged.
 */
export function asTransformersLoads(json: Json, tokenizerConfig: Json): Json {
  if (!isByteLevelBpe(json)) return json;
  const declared: unknown = tokenizerConfig?.tokenizer_class;
  const cls = typeof declared === 'string' ? declared.replace(/Fast$/, '') : null;
  if (cls === null || AS_IS_CLASSES.has(cls)) return json;
  if (cls !== 'Qwen2Tokenizer') throw new UnsupportedTokenizer(`tokenizer_class ${cls} rebuilds the byte-level pipeline in transformers`);
  return {
    ...json,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: tokenizerConfig.add_prefix_space ?? false, trim_offsets: true, use_regex: false },
      ],
    },
    model: {
      ...json.model,
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
    },
  };
}
