/**
 * The Split / ByteLevel patterns of tokenizer.json, as the Rust crate runs them: compiled by
 * Oniguruma, whose \p{L}, \p{N}, \s ... are frozen at the Unicode version of the onig crate.
 * A JavaScript RegExp with \p{L} would use this Node's Unicode instead, so the pattern is
 * rewritten with every class spelled out from bytelevel-tables.ts (read from Python's
 * `tokenizers`), and backtracking does the rest: Oniguruma and V8 both take alternatives left
 * to right and quantifiers greedily, with the same lookarounds.
 *
 * Only the constructs tokenizer.json patterns use are accepted (alternation, groups,
 * (?i:...) on ASCII letters, lookarounds, quantifiers, classes, \p{..}/\s/\d/\w); anything
 * else throws, so the tokenizer is reported unverified instead of guessed.
 */
import { ASCII_CASE_SETS, REGEX_CLASSES } from './bytelevel-tables.js';

export class UnsupportedPattern extends Error {}

const MAX_CP = 0x10ffff;

/** Sorted, disjoint, inclusive [start, end, start, end, ...] ranges. */
type CodeSet = number[];

function union(...sets: CodeSet[]): CodeSet {
  const pairs: [number, number][] = [];
  for (const s of sets) for (let i = 0; i < s.length; i += 2) pairs.push([s[i], s[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: CodeSet = [];
  for (const [a, b] of pairs) {
    if (out.length && a <= out[out.length - 1] + 1) out[out.length - 1] = Math.max(out[out.length - 1], b);
    else out.push(a, b);
  }
  return out;
}

function complement(s: CodeSet): CodeSet {
  const out: CodeSet = [];
  let next = 0;
  for (let i = 0; i < s.length; i += 2) {
    if (s[i] > next) out.push(next, s[i] - 1);
    next = s[i + 1] + 1;
  }
  if (next <= MAX_CP) out.push(next, MAX_CP);
  return out;
}

const hex = (cp: number): string => `\\u{${cp.toString(16)}}`;

function classSource(s: CodeSet): string {
  if (s.length === 0) return '[]';
  let body = '';
  for (let i = 0; i < s.length; i += 2) body += s[i] === s[i + 1] ? hex(s[i]) : `${hex(s[i])}-${hex(s[i + 1])}`;
  return `[${body}]`;
}

function named(name: string): CodeSet {
  const table = REGEX_CLASSES[name];
  if (!table) throw new UnsupportedPattern(`regex class ${name}`);
  return table as number[];
}

const SIMPLE_ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, f: 0x0c, v: 0x0b, a: 0x07, e: 0x1b };
// Classes that stay the same set under (?i:): Oniguruma folds case inside them, which these tables do not model.
const CASE_CLOSED = new Set(['L', 'N', 'P', 'S', 'M', 'Z', 'Nd', 's', 'd', 'w']);

class Translator {
  private i = 0;
  private readonly chars: string[];

  constructor(pattern: string) {
    this.chars = Array.from(pattern);
  }

  translate(): string {
    const out = this.alternation(false);
    if (this.i < this.chars.length) throw new UnsupportedPattern(`unbalanced ')' at ${this.i}`);
    return out;
  }

  private peek(k = 0): string | undefined {
    return this.chars[this.i + k];
  }

  private alternation(ci: boolean): string {
    const branches = [this.sequence(ci)];
    while (this.peek() === '|') {
      this.i++;
      branches.push(this.sequence(ci));
    }
    return branches.join('|');
  }

  private sequence(ci: boolean): string {
    let out = '';
    while (this.i < this.chars.length && this.peek() !== '|' && this.peek() !== ')') {
      const atom = this.atom(ci);
      out += atom + this.quantifier();
    }
    return out;
  }

  private quantifier(): string {
    const c = this.peek();
    let q = '';
    if (c === '?' || c === '*' || c === '+') {
      this.i++;
      q = c;
    } else if (c === '{') {
      const rest = this.chars.slice(this.i, this.i + 24).join('');
      const m = /^\{(\d*)(,?)(\d*)\}/.exec(rest);
      if (!m || (m[1] === '' && m[3] === '')) return '';
      this.i += Array.from(m[0]).length;
      q = m[2] ? `{${m[1] || '0'},${m[3]}}` : `{${m[1]}}`;
    } else {
      return '';
    }
    if (this.peek() === '?') {
      this.i++;
      q += '?';
    } else if (this.peek() === '+') {
      throw new UnsupportedPattern('possessive quantifier');
    }
    if (/^[?*+{]$/.test(this.peek() ?? '')) throw new UnsupportedPattern('stacked quantifiers');
    return q;
  }

  private atom(ci: boolean): string {
    const c = this.chars[this.i++];
    switch (c) {
      case '(': {
        let prefix = '(?:';
        let innerCi = ci;
        if (this.peek() === '?') {
          const two = (this.peek(1) ?? '') + (this.peek(2) ?? '');
          if (this.peek(1) === ':') {
            this.i += 2;
          } else if (this.peek(1) === '=' || this.peek(1) === '!') {
            prefix = `(?${this.peek(1)}`;
            this.i += 2;
          } else if (two === '<=' || two === '<!') {
            prefix = `(?${two}`;
            this.i += 3;
          } else if (two === 'i:') {
            innerCi = true;
            this.i += 3;
          } else {
            throw new UnsupportedPattern(`group (?${two}`);
          }
        }
        const inner = this.alternation(innerCi);
        if (this.chars[this.i++] !== ')') throw new UnsupportedPattern('unclosed group');
        return `${prefix}${inner})`;
      }
      case '[':
        if (ci) throw new UnsupportedPattern('character class inside (?i:)');
        return classSource(this.bracket());
      case '\\':
        return this.escape(ci);
      case '.':
        return classSource(complement([0x0a, 0x0a]));
      case '^':
      case '$':
        throw new UnsupportedPattern(`anchor ${c}`);
      case ')':
      case '*':
      case '+':
      case '?':
        throw new UnsupportedPattern(`unexpected ${c}`);
      default:
        return this.literal(c.codePointAt(0)!, ci);
    }
  }

  private literal(cp: number, ci: boolean): string {
    if (ci) {
      const lower = cp >= 0x41 && cp <= 0x5a ? cp + 0x20 : cp;
      const letter = lower >= 0x61 && lower <= 0x7a ? String.fromCharCode(lower) : null;
      if (letter) return classSource(union(...(ASCII_CASE_SETS[letter] as number[]).map((x) => [x, x])));
      if (cp >= 0x80) throw new UnsupportedPattern('non-ASCII literal inside (?i:)');
    }
    return /^[A-Za-z0-9]$/.test(String.fromCodePoint(cp)) ? String.fromCodePoint(cp) : hex(cp);
  }

  /** One escape: a literal code point, or a set (class escapes). */
  private escapeValue(ci: boolean): { cp: number } | { set: CodeSet } {
    const c = this.chars[this.i++];
    if (c === undefined) throw new UnsupportedPattern('trailing backslash');
    if (c in SIMPLE_ESCAPES) return { cp: SIMPLE_ESCAPES[c] };
    const shorthand: Record<string, [string, boolean]> = { s: ['s', false], S: ['s', true], d: ['d', false], D: ['d', true], w: ['w', false], W: ['w', true] };
    if (c in shorthand) {
      const [name, neg] = shorthand[c];
      return { set: neg ? complement(named(name)) : named(name) };
    }
    if (c === 'p' || c === 'P') {
      if (this.chars[this.i++] !== '{') throw new UnsupportedPattern('\\p without {');
      let name = '';
      while (this.i < this.chars.length && this.peek() !== '}') name += this.chars[this.i++];
      this.i++;
      let neg = c === 'P';
      if (name.startsWith('^')) {
        neg = !neg;
        name = name.slice(1);
      }
      if (ci && !CASE_CLOSED.has(name)) throw new UnsupportedPattern(`\\p{${name}} inside (?i:)`);
      return { set: neg ? complement(named(name)) : named(name) };
    }
    if (c === 'x' || c === 'u') {
      let digits = '';
      if (c === 'x' && this.peek() === '{') {
        this.i++;
        while (this.i < this.chars.length && this.peek() !== '}') digits += this.chars[this.i++];
        this.i++;
      } else {
        const n = c === 'x' ? 2 : 4;
        for (let k = 0; k < n && /[0-9A-Fa-f]/.test(this.peek() ?? ''); k++) digits += this.chars[this.i++];
      }
      if (!/^[0-9A-Fa-f]{1,6}$/.test(digits)) throw new UnsupportedPattern(`\\${c} escape`);
      return { cp: parseInt(digits, 16) };
    }
    if (/[0-9A-Za-z]/.test(c)) throw new UnsupportedPattern(`escape \\${c}`);
    return { cp: c.codePointAt(0)! };
  }

  private escape(ci: boolean): string {
    const v = this.escapeValue(ci);
    return 'set' in v ? classSource(v.set) : this.literal(v.cp, ci);
  }

  private bracket(): CodeSet {
    let negate = false;
    if (this.peek() === '^') {
      negate = true;
      this.i++;
    }
    if (this.peek() === ']') throw new UnsupportedPattern("']' first in a class");
    const sets: CodeSet[] = [];
    const single = (): { cp: number } | { set: CodeSet } => {
      const c = this.chars[this.i++];
      if (c === undefined) throw new UnsupportedPattern('unclosed class');
      if (c === '\\') return this.escapeValue(false);
      if (c === '[') throw new UnsupportedPattern('nested class or POSIX bracket');
      if (c === '&' && this.peek() === '&') throw new UnsupportedPattern('class intersection');
      return { cp: c.codePointAt(0)! };
    };
    while (this.peek() !== ']') {
      const first = single();
      if ('set' in first) {
        sets.push(first.set);
        continue;
      }
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== undefined) {
        this.i++;
        const last = single();
        if ('set' in last || last.cp < first.cp) throw new UnsupportedPattern('bad class range');
        sets.push([first.cp, last.cp]);
      } else {
        sets.push([first.cp, first.cp]);
      }
    }
    this.i++;
    const set = union(...sets);
    return negate ? complement(set) : set;
  }
}

/** A global, Unicode-mode RegExp that matches what Oniguruma matches with `pattern`. */
export function onigRegExp(pattern: string): RegExp {
  const source = new Translator(pattern).translate();
  return new RegExp(source, 'gu');
}

/** RegExp for a literal pattern (Split with {String: ...}): the crate escapes it and uses the same matcher. */
export function literalRegExp(text: string): RegExp {
  return new RegExp(Array.from(text, (ch) => hex(ch.codePointAt(0)!)).join(''), 'gu');
}

/**
 * [start, end, isMatch] pieces covering `text`, as the crate's `find_matches` lists them:
 * matches and the text between them, in order. An empty text is one empty non-match.
 */
export function findMatches(re: RegExp, text: string): [number, number, boolean][] {
  if (text === '') return [[0, 0, false]];
  const out: [number, number, boolean][] = [];
  let prev = 0;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (end === start) re.lastIndex = start + (text.codePointAt(start)! > 0xffff ? 2 : 1);
    if (prev !== start) out.push([prev, start, false]);
    out.push([start, end, true]);
    prev = end;
  }
  if (prev !== text.length) out.push([prev, text.length, false]);
  return out;
}
