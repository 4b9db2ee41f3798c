/**
 * NFC as the Rust crate's NFC normalizer computes it: unicode-normalization-alignments 0.1.12
 * (Unicode 9.0 data): canonical decomposition (nfdRust), then its recomposition state machine,
 * which composes each starter with the following marks unless a mark of the same or a higher
 * class stands between them. On Unicode 9.0 tables, not this Node's String.normalize.
 */
import { COMPOSITION_PAIRS } from './bytelevel-tables.js';
import { nfdRust } from './rust-unicode.js';
import { CANONICAL_DECOMPOSITIONS, COMBINING_CLASS_RUNS } from './unicode-tables.js';

let compositions: Map<number, number> | null = null;
let classes: Map<number, number> | null = null;
/** Code points NFC may change or merge with the one before: decomposable, non-starters, second halves of a composition. */
let touched: Set<number> | null = null;

function tables(): { compose: Map<number, number>; ccc: Map<number, number>; touched: Set<number> } {
  if (!compositions || !classes || !touched) {
    compositions = new Map();
    touched = new Set();
    for (let i = 0; i < COMPOSITION_PAIRS.length; i += 3) {
      compositions.set(COMPOSITION_PAIRS[i] * 0x200000 + COMPOSITION_PAIRS[i + 1], COMPOSITION_PAIRS[i + 2]);
      touched.add(COMPOSITION_PAIRS[i + 1]);
    }
    for (let cp = V_BASE; cp < V_BASE + V_COUNT; cp++) touched.add(cp);
    for (let cp = T_BASE + 1; cp < T_BASE + T_COUNT; cp++) touched.add(cp);
    for (let i = 0; i < CANONICAL_DECOMPOSITIONS.length; i += 2 + CANONICAL_DECOMPOSITIONS[i + 1]) touched.add(CANONICAL_DECOMPOSITIONS[i]);
    classes = new Map();
    for (let i = 0; i < COMBINING_CLASS_RUNS.length; i += 3) {
      for (let cp = COMBINING_CLASS_RUNS[i]; cp <= COMBINING_CLASS_RUNS[i + 1]; cp++) {
        classes.set(cp, COMBINING_CLASS_RUNS[i + 2]);
        touched.add(cp);
      }
    }
  }
  return { compose: compositions, ccc: classes, touched };
}

const S_BASE = 0xac00;
const L_BASE = 0x1100;
const V_BASE = 0x1161;
const T_BASE = 0x11a7;
const L_COUNT = 19;
const V_COUNT = 21;
const T_COUNT = 28;
const N_COUNT = V_COUNT * T_COUNT;
const S_COUNT = L_COUNT * N_COUNT;

function compose(a: number, b: number, table: Map<number, number>): number | undefined {
  if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT) {
    return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
  }
  const s = a - S_BASE;
  if (s >= 0 && s < S_COUNT && s % T_COUNT === 0 && b > T_BASE && b < T_BASE + T_COUNT) return a + (b - T_BASE);
  return table.get(a * 0x200000 + b);
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * A starter that nothing composes onto resets the recomposition (the composee becomes that
 * starter, nothing is buffered), so only the runs of touched code points, each with the
 * starter before it, need the full algorithm; the rest is copied.
 */
export function nfcRust(text: string): string {
  if (ASCII.test(text)) return text;
  const { touched } = tables();
  let out = '';
  let copied = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    if (!touched.has(cp)) {
      i += width;
      continue;
    }
    // Back up to the starter before the run (a code point not touched, or the text's start).
    let start = i;
    if (start > copied) {
      const before = text.codePointAt(start - 1)!;
      start -= before >= 0xdc00 && before <= 0xdfff && start >= 2 ? 2 : 1;
    }
    let end = i + width;
    while (end < text.length) {
      const next = text.codePointAt(end)!;
      if (!touched.has(next)) break;
      end += next > 0xffff ? 2 : 1;
    }
    out += text.slice(copied, start) + recompose(text.slice(start, end));
    copied = end;
    i = end;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

function recompose(text: string): string {
  const { compose: table, ccc } = tables();
  const out: number[] = [];
  const buffer: number[] = [];
  let composee = -1;
  let lastClass = -1;
  for (const ch of nfdRust(text)) {
    const cp = ch.codePointAt(0)!;
    const cls = ccc.get(cp) ?? 0;
    if (composee < 0) {
      if (cls !== 0) out.push(cp);
      else composee = cp;
      continue;
    }
    if (lastClass < 0) {
      const r = compose(composee, cp, table);
      if (r !== undefined) {
        composee = r;
        continue;
      }
      if (cls === 0) {
        out.push(composee);
        composee = cp;
        continue;
      }
      buffer.push(cp);
      lastClass = cls;
      continue;
    }
    if (lastClass >= cls) {
      if (cls === 0) {
        out.push(composee, ...buffer);
        buffer.length = 0;
        composee = cp;
        lastClass = -1;
        continue;
      }
      buffer.push(cp);
      lastClass = cls;
      continue;
    }
    const r = compose(composee, cp, table);
    if (r !== undefined) {
      composee = r;
      continue;
    }
    buffer.push(cp);
    lastClass = cls;
  }
  if (composee >= 0) out.push(composee);
  out.push(...buffer);
  let s = '';
  for (let i = 0; i < out.length; i += 4096) s += String.fromCodePoint(...out.slice(i, i + 4096));
  return s;
}
