/**
 * Character classes and NFD as the Rust `tokenizers` crate computes them: on the frozen tables
 * of its dependencies (unicode-tables.ts), not on the Unicode version of this Node.js. A
 * character assigned after those tables is then no control, mark or punctuation and does not
 * decompose, so it stays inside its word as it does in Python.
 */
import { CANONICAL_DECOMPOSITIONS, COMBINING_CLASS_RUNS, CONTROL_RANGES, NONSPACING_MARK_RANGES, PUNCTUATION_RANGES } from './unicode-tables.js';

function inRanges(cp: number, ranges: readonly number[]): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < ranges[2 * mid]) hi = mid - 1;
    else if (cp > ranges[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/** `is_other()` of unicode_categories 0.1.1: Cc, Cf, Co. */
export function isRustOther(cp: number): boolean {
  return inRanges(cp, CONTROL_RANGES);
}

export function isRustNonspacingMark(cp: number): boolean {
  return inRanges(cp, NONSPACING_MARK_RANGES);
}

/** BertPreTokenizer's punctuation: ASCII punctuation or a P* category of unicode_categories 0.1.1. */
export function isRustBertPunctuation(cp: number): boolean {
  if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) || (cp >= 0x5b && cp <= 0x60) || (cp >= 0x7b && cp <= 0x7e);
  return inRanges(cp, PUNCTUATION_RANGES);
}

// Rust's `char::is_whitespace` is the White_Space property, which has not changed in years.
const WHITE_SPACE = /^\p{White_Space}$/u;
export function isRustWhitespace(ch: string): boolean {
  const cp = ch.charCodeAt(0);
  if (cp < 0x80) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d);
  // White_Space has nothing outside U+0085..U+3000; the regex is slow enough to matter per character.
  if (cp < 0x85 || cp > 0x3000) return false;
  return WHITE_SPACE.test(ch);
}

/** isRustWhitespace of a code point. */
export function isRustWhitespaceCodePoint(cp: number): boolean {
  if (cp < 0x80) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d);
  if (cp < 0x85 || cp > 0x3000) return false;
  return WHITE_SPACE.test(String.fromCharCode(cp));
}

let decompositions: Map<number, string> | null = null;
let combiningClasses: Map<number, number> | null = null;
/** 1 for each code point NFD changes or may move (a decomposition, a combining class, a Hangul syllable). */
let touched: Uint8Array | null = null;

function tables(): { decomp: Map<number, string>; ccc: Map<number, number> } {
  if (!decompositions || !combiningClasses) {
    decompositions = new Map();
    for (let i = 0; i < CANONICAL_DECOMPOSITIONS.length; ) {
      const cp = CANONICAL_DECOMPOSITIONS[i];
      const n = CANONICAL_DECOMPOSITIONS[i + 1];
      decompositions.set(cp, String.fromCodePoint(...CANONICAL_DECOMPOSITIONS.slice(i + 2, i + 2 + n)));
      i += 2 + n;
    }
    combiningClasses = new Map();
    for (let i = 0; i < COMBINING_CLASS_RUNS.length; i += 3) {
      for (let cp = COMBINING_CLASS_RUNS[i]; cp <= COMBINING_CLASS_RUNS[i + 1]; cp++) combiningClasses.set(cp, COMBINING_CLASS_RUNS[i + 2]);
    }
    touched = new Uint8Array(0x110000);
    for (const cp of decompositions.keys()) touched[cp] = 1;
    for (const cp of combiningClasses.keys()) touched[cp] = 1;
    touched.fill(1, S_BASE, S_BASE + S_COUNT);
  }
  return { decomp: decompositions, ccc: combiningClasses };
}

const ASCII = /^[\x00-\x7f]*$/;
const S_BASE = 0xac00;
const L_BASE = 0x1100;
const V_BASE = 0x1161;
const T_BASE = 0x11a7;
const T_COUNT = 28;
const N_COUNT = 21 * T_COUNT;
const S_COUNT = 19 * N_COUNT;

/**
 * Canonical decomposition (NFD) on the Unicode 9.0 data of unicode-normalization-alignments,
 * which the Rust crate's `nfd()` uses: full decomposition, then combining marks stably
 * ordered by class between starters.
 */
export function nfdRust(text: string): string {
  if (ASCII.test(text)) return text;
  const { decomp, ccc } = tables();
  // Most text has nothing NFD changes: one pass over a flag table instead of rebuilding it.
  let changes = false;
  for (let i = 0; i < text.length && !changes; i++) {
    const cp = text.codePointAt(i)!;
    if (cp > 0xffff) i++;
    changes = touched![cp] === 1;
  }
  if (!changes) return text;
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const s = cp - S_BASE;
    if (s >= 0 && s < S_COUNT) {
      out.push(L_BASE + Math.floor(s / N_COUNT), V_BASE + Math.floor((s % N_COUNT) / T_COUNT));
      if (s % T_COUNT) out.push(T_BASE + (s % T_COUNT));
      continue;
    }
    const d = decomp.get(cp);
    if (d === undefined) out.push(cp);
    else for (const c of d) out.push(c.codePointAt(0)!);
  }
  // Reorder each run of non-starters by combining class (stable: equal classes keep their order).
  for (let i = 0; i < out.length; ) {
    if (!ccc.has(out[i])) {
      i++;
      continue;
    }
    let j = i;
    while (j < out.length && ccc.has(out[j])) j++;
    if (j - i > 1) {
      const run = out.slice(i, j).map((cp, k) => [ccc.get(cp)!, k, cp]);
      run.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      for (let k = 0; k < run.length; k++) out[i + k] = run[k][2];
    }
    i = j;
  }
  let s = '';
  for (let i = 0; i < out.length; i += 4096) s += String.fromCodePoint(...out.slice(i, i + 4096));
  return s;
}
