/**
 * A BertNormalizer that behaves like the Rust `tokenizers` crate, used in place of
 * tokenizers.js's own. The JS one walks UTF-16 code units (so CJK ideographs outside
 * the BMP are not isolated), lowercases whole strings (so a word-final Σ becomes ς where
 * Rust gives σ) and lowercases before stripping accents; each of those changes token ids.
 * Controls, marks and the NFD it strips accents with follow the Rust crate's frozen tables
 * (rust-unicode.ts), not this Node.js's Unicode version.
 */
import { isRustNonspacingMark, isRustOther, isRustWhitespace, isRustBertPunctuation, nfdRust } from './rust-unicode.js';

export interface BertNormalizerConfig {
  clean_text?: boolean;
  handle_chinese_chars?: boolean;
  strip_accents?: boolean | null;
  lowercase?: boolean;
}

// Rust counts \t \n \r as whitespace, not control, whatever their Unicode category.
function isControl(ch: string, cp: number): boolean {
  return ch !== '\t' && ch !== '\n' && ch !== '\r' && isRustOther(cp);
}

function isWhitespace(ch: string): boolean {
  return ch === '\t' || ch === '\n' || ch === '\r' || isRustWhitespace(ch);
}

function stripNonspacingMarks(text: string): string {
  let out = '';
  for (const ch of text) if (!isRustNonspacingMark(ch.codePointAt(0)!)) out += ch;
  return out;
}

// The ranges of the upstream `is_chinese_char`, kept as they are (0x2B820..0x2B91F is
// absent there, so it is absent here too).
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

// Rust lowercases char by char (`char::to_lowercase`), which has no final-sigma rule.
function lowercaseByCodePoint(text: string): string {
  let out = '';
  for (const ch of text) out += ch.toLowerCase();
  return out;
}

export function createBertNormalizer(config: BertNormalizerConfig): (text: string) => string {
  const cleanText = config.clean_text ?? true;
  const chinese = config.handle_chinese_chars ?? true;
  const lowercase = config.lowercase ?? true;
  const stripAccents = config.strip_accents ?? lowercase;

  return (text: string): string => {
    let out = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (cleanText) {
        if (cp === 0 || cp === 0xfffd || isControl(ch, cp)) continue;
        if (isWhitespace(ch)) {
          out += ' ';
          continue;
        }
      }
      out += chinese && isChineseChar(cp) ? ` ${ch} ` : ch;
    }
    if (stripAccents) out = stripNonspacingMarks(nfdRust(out));
    if (lowercase) out = lowercaseByCodePoint(out);
    return out;
  };
}

/**
 * BertPreTokenizer as Rust runs it: split on `char::is_whitespace` (dropped), then every
 * punctuation character is a word of its own. tokenizers.js uses JavaScript's \\s and \\p{P},
 * which disagree on U+0085, U+FEFF and on every character newer than the crate's tables.
 */
export function bertPreTokenize(text: string): string[] {
  return splitOnRustWhitespace(text, isRustBertPunctuation);
}

/** Words between runs of `char::is_whitespace` (WhitespaceSplit); `isolate` makes a character a word of its own. */
export function splitOnRustWhitespace(text: string, isolate: (codePoint: number) => boolean = () => false): string[] {
  const words: string[] = [];
  let word = '';
  for (const ch of text) {
    if (isRustWhitespace(ch)) {
      if (word) words.push(word);
      word = '';
    } else if (isolate(ch.codePointAt(0)!)) {
      if (word) words.push(word);
      words.push(ch);
      word = '';
    } else {
      word += ch;
    }
  }
  if (word) words.push(word);
  return words;
}
