/**
 * Added tokens (special tokens and the like) found in a text before it is normalized and
 * split into words, as the Rust crate's AddedVocabulary finds them: leftmost-longest matches,
 * first among the tokens that are not normalized (on the raw text), then among the normalized
 * ones (on each normalized remainder). `lstrip` / `rstrip` swallow the whitespace next to a
 * match; `single_word` matches only between non-word characters.
 */
import { isRustWhitespace } from './rust-unicode.js';

export interface AddedTokenSpec {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** A piece of text: either an added token's id, or text still to be tokenized. */
export type Section = { id: number } | { text: string };

interface TrieNode {
  next: Map<string, TrieNode>;
  token?: AddedTokenSpec;
}

// Rust's `char::is_alphanumeric`.
const WORD_CHAR = /^[\p{Alphabetic}\p{N}]$/u;

function isWordChar(ch: string | undefined): boolean {
  return ch !== undefined && WORD_CHAR.test(ch);
}

function lastChar(text: string, end: number): string | undefined {
  if (end <= 0) return undefined;
  const cp = text.codePointAt(end - 1)!;
  if (end >= 2 && cp >= 0xdc00 && cp <= 0xdfff) return String.fromCodePoint(text.codePointAt(end - 2)!);
  return String.fromCodePoint(cp);
}

export class AddedTokenMatcher {
  private readonly root: TrieNode = { next: new Map() };
  readonly size: number;

  constructor(tokens: readonly AddedTokenSpec[], key: (t: AddedTokenSpec) => string) {
    let size = 0;
    for (const token of tokens) {
      const content = key(token);
      if (!content) continue;
      let node = this.root;
      for (const unit of content) {
        let child = node.next.get(unit);
        if (!child) node.next.set(unit, (child = { next: new Map() }));
        node = child;
      }
      // The first of two tokens with the same content wins, as in a dictionary built in order.
      if (!node.token) node.token = token;
      size++;
    }
    this.size = size;
  }

  /** Splits `text` around the added tokens in it; whitespace swallowed by lstrip/rstrip disappears. */
  split(text: string): Section[] {
    if (this.size === 0 || text === '') return text === '' ? [] : [{ text }];
    const matches: { start: number; end: number; token: AddedTokenSpec }[] = [];
    let i = 0;
    while (i < text.length) {
      let node: TrieNode | undefined = this.root;
      let best: { end: number; token: AddedTokenSpec } | null = null;
      let j = i;
      while (j < text.length) {
        const cp = text.codePointAt(j)!;
        const unit = String.fromCodePoint(cp);
        node = node.next.get(unit);
        if (!node) break;
        j += unit.length;
        if (node.token) best = { end: j, token: node.token };
      }
      if (best) {
        // A single_word token inside a word is no match, and its text is not searched again.
        if (!best.token.single_word || (!isWordChar(lastChar(text, i)) && !isWordChar(charAt(text, best.end)))) {
          matches.push({ start: i, end: best.end, token: best.token });
        }
        i = best.end;
      } else {
        i += text.codePointAt(i)! > 0xffff ? 2 : 1;
      }
    }
    if (matches.length === 0) return [{ text }];
    // Strip whitespace around matches; a match never swallows another one.
    const sections: Section[] = [];
    let cursor = 0;
    matches.forEach((m, k) => {
      let start = m.start;
      let end = m.end;
      if (m.token.lstrip) {
        const floor = k > 0 ? matches[k - 1].end : 0;
        while (start > floor && isRustWhitespace(lastChar(text, start)!)) start -= lastChar(text, start)!.length;
      }
      if (m.token.rstrip) {
        const ceiling = k + 1 < matches.length ? matches[k + 1].start : text.length;
        while (end < ceiling && isRustWhitespace(charAt(text, end)!)) end += charAt(text, end)!.length;
        matches[k].end = end;
      }
      if (start > cursor) sections.push({ text: text.slice(cursor, start) });
      sections.push({ id: m.token.id });
      cursor = end;
    });
    if (cursor < text.length) sections.push({ text: text.slice(cursor) });
    return sections;
  }
}

function charAt(text: string, index: number): string | undefined {
  if (index >= text.length) return undefined;
  return String.fromCodePoint(text.codePointAt(index)!);
}
