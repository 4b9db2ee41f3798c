/**
 * A BertNormalizer that behaves like the Rust `tokenizers` crate, used in place of
 * tokenizers.js's own. The JS one walks UTF-16 code units (so CJK ideographs outside
 * the BMP are not isolated), lowercases whole strings (so a word-final Σ becomes ς where
 * Rust gives σ) and lowercases before stripping accents; each of those changes token ids.
 * Controls, marks and the NFD it strips accents with follow the Rust crate's frozen tables
 * (rust-unicode.ts), not this Node.js's Unicode version.
 */
import { isRustNonspacingMark, isRustOther, isRustWhitespace, isRustWhitespaceCodePoint, isRustBertPunctuation, nfdRust } from './rust-unicode.js';

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

// Text is copied in runs between the characters that change, not character by character:
// appending one code point at a time cost ~1 µs per character, 100 s for a 100 MB body.
function stripNonspacingMarks(text: string): string {
  const parts: string[] = [];
  let run = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const next = i + (cp > 0xffff ? 2 : 1);
    // No nonspacing mark below U+0300.
    if (cp >= 0x300 && isRustNonspacingMark(cp)) {
      parts.push(text.slice(run, i));
      run = next;
    }
    i = next;
  }
  if (run === 0) return text;
  parts.push(text.slice(run));
  return parts.join('');
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

// Rust lowercases char by char (`char::to_lowercase`), which has no final-sigma rule; the only
// context-dependent mapping of String.prototype.toLowerCase is that of Σ, so the text is
// lowercased whole around it.
function lowercaseByCodePoint(text: string): string {
  return text.includes('\u03a3') ? text.split('\u03a3').map((part) => part.toLowerCase()).join('\u03c3') : text.toLowerCase();
}

const DROP = null;
const KEEP = undefined;
type Action = string | typeof DROP | typeof KEEP;

export function createBertNormalizer(config: BertNormalizerConfig): (text: string) => string {
  const cleanText = config.clean_text ?? true;
  const chinese = config.handle_chinese_chars ?? true;
  const lowercase = config.lowercase ?? true;
  const stripAccents = config.strip_accents ?? lowercase;

  // What clean_text and handle_chinese_chars do to a code point: drop it, replace it, or keep it.
  const decide = (cp: number): Action => {
    const ch = String.fromCodePoint(cp);
    if (cleanText) {
      if (cp === 0 || cp === 0xfffd || isControl(ch, cp)) return DROP;
      if (isWhitespace(ch)) return ' ';
    }
    return chinese && isChineseChar(cp) ? ` ${ch} ` : KEEP;
  };
  const ascii: Action[] = Array.from({ length: 0x80 }, (_, cp) => decide(cp));
  // Decisions on other code points, remembered: the White_Space test is a regex.
  const decided = new Map<number, Action>();

  return (text: string): string => {
    const parts: string[] = [];
    let run = 0;
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i)!;
      const next = i + (cp > 0xffff ? 2 : 1);
      let action: Action;
      if (cp < 0x80) action = ascii[cp];
      else if (decided.has(cp)) action = decided.get(cp);
      else decided.set(cp, (action = decide(cp)));
      if (action !== KEEP) {
        parts.push(text.slice(run, i));
        if (action !== DROP) parts.push(action);
        run = next;
      }
      i = next;
    }
    let out = text;
    if (run > 0) {
      parts.push(text.slice(run));
      out = parts.join('');
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
  // Words are sliced out of the text, not built a character at a time (see stripNonspacingMarks).
  let start = -1;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const next = i + (cp > 0xffff ? 2 : 1);
    if (isRustWhitespaceCodePoint(cp)) {
      if (start >= 0) words.push(text.slice(start, i));
      start = -1;
    } else if (isolate(cp)) {
      if (start >= 0) words.push(text.slice(start, i));
      words.push(text.slice(i, next));
      start = -1;
    } else if (start < 0) {
      start = i;
    }
    i = next;
  }
  if (start >= 0) words.push(text.slice(start));
  return words;
}
