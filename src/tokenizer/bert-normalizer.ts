/**
 * A BertNormalizer that behaves like the Rust `tokenizers` crate, used in place of
 * tokenizers.js's own. The JS one walks UTF-16 code units (so CJK ideographs outside
 * the BMP are not isolated), lowercases whole strings (so a word-final Σ becomes ς where
 * Rust gives σ) and lowercases before stripping accents; each of those changes token ids.
 */

export interface BertNormalizerConfig {
  clean_text?: boolean;
  handle_chinese_chars?: boolean;
  strip_accents?: boolean | null;
  lowercase?: boolean;
}

const CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u;
const WHITESPACE = /\p{White_Space}/u;
const NONSPACING_MARKS = /\p{Mn}/gu;

// Rust counts \t \n \r as whitespace, not control, whatever their Unicode category.
function isControl(ch: string): boolean {
  return ch !== '\t' && ch !== '\n' && ch !== '\r' && CONTROL.test(ch);
}

function isWhitespace(ch: string): boolean {
  return ch === '\t' || ch === '\n' || ch === '\r' || WHITESPACE.test(ch);
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
        if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
        if (isWhitespace(ch)) {
          out += ' ';
          continue;
        }
      }
      out += chinese && isChineseChar(cp) ? ` ${ch} ` : ch;
    }
    if (stripAccents) out = out.normalize('NFD').replace(NONSPACING_MARKS, '');
    if (lowercase) out = lowercaseByCodePoint(out);
    return out;
  };
}
