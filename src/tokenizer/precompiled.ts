/**
 * The `Precompiled` normalizer: SentencePiece's compiled normalization rules (for XLM-R,
 * nmt_nfkc: NFKC plus whitespace and control-character rules) applied as the Rust crate
 * applies them. tokenizers.js replaces the rules with String.normalize('NFKC'), which
 * differs wherever the rules are not plain NFKC.
 *
 * The charsmap is a double-array trie over UTF-8 bytes whose values index a blob of
 * NUL-terminated replacements. Rust looks up each grapheme cluster shorter than 6 bytes
 * whole, taking the replacement of the SHORTEST rule that is a prefix of it for the whole
 * cluster; otherwise, or when nothing matches, each character on its own.
 */
const utf8 = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const CACHE_MAX = 50000;

export class PrecompiledNormalizer {
  private readonly units: Uint32Array;
  private readonly blob: Uint8Array;
  private readonly cache = new Map<string, string | null>();
  private readonly segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

  constructor(base64: string) {
    const bytes = Buffer.from(base64, 'base64');
    if (bytes.length < 4) throw new Error('Precompiled normalizer: charsmap too short');
    const trieBytes = bytes.readUInt32LE(0);
    const count = Math.floor(trieBytes / 4);
    if (4 + count * 4 > bytes.length) throw new Error('Precompiled normalizer: charsmap trie runs past its end');
    this.units = new Uint32Array(count);
    for (let i = 0; i < count; i++) this.units[i] = bytes.readUInt32LE(4 + 4 * i);
    this.blob = new Uint8Array(bytes.subarray(4 + count * 4));
  }

  /** The replacement of the shortest rule that is a prefix of `chunk`, or null. */
  private transform(chunk: string): string | null {
    const hit = this.cache.get(chunk);
    if (hit !== undefined) return hit;
    const key = utf8.encode(chunk);
    const units = this.units;
    let result: string | null = null;
    let pos = 0;
    let unit = units[0];
    pos ^= offset(unit);
    for (const c of key) {
      if (c === 0) break;
      pos ^= c;
      unit = units[pos];
      if (unit === undefined || label(unit) !== c) break;
      pos ^= offset(unit);
      if ((unit >>> 8) & 1) {
        result = this.replacementAt(units[pos] & 0x7fffffff);
        break;
      }
    }
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(chunk, result);
    return result;
  }

  private replacementAt(index: number): string {
    let end = index;
    while (end < this.blob.length && this.blob[end] !== 0) end++;
    return decoder.decode(this.blob.subarray(index, end));
  }

  private graphemes(text: string): Iterable<string> {
    return graphemesInWindows(this.segmenter, text);
  }

  normalize(text: string): string {
    let out = '';
    for (const segment of this.graphemes(text)) {
      if (utf8Length(segment) < 6) {
        const whole = this.transform(segment);
        if (whole !== null) {
          out += whole;
          continue;
        }
      }
      for (const ch of segment) {
        const r = this.transform(ch);
        out += r ?? ch;
      }
    }
    return out;
  }
}

// Intl.Segmenter takes time quadratic in the length of the string it segments (10 000
// characters: 0.2 s, 40 000: 4 s), so it is given windows of this many code units.
const SEGMENT_WINDOW = 1024;

// A window holding a single cluster is grown up to this many times its size before the
// cluster is cut (see below).
const GROW_AT_MOST = 8;

export interface GraphemeSegmenter {
  segment(text: string): Iterable<{ segment: string; index: number }>;
}

/**
 * The grapheme clusters of `text`, as the segmenter finds them in the whole text, found
 * window by window: the last cluster of a window may continue past it, so the next window
 * starts where that cluster starts. A boundary depends only on what comes before it and
 * on the character right after it, so a window started at a boundary segments the rest
 * as the whole text would.
 */
export function* graphemesInWindows(segmenter: GraphemeSegmenter, text: string, window = SEGMENT_WINDOW): Generator<string> {
  let pos = 0;
  let size = window;
  while (pos < text.length) {
    let end = Math.min(text.length, pos + size);
    // The character after the window's second-last boundary must be whole, not half a surrogate pair.
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
    const chunk = text.slice(pos, end);
    if (end === text.length) {
      for (const { segment } of segmenter.segment(chunk)) yield segment;
      return;
    }
    let last = 0;
    const pending: string[] = [];
    for (const { segment, index } of segmenter.segment(chunk)) {
      pending.push(segment);
      last = index;
    }
    if (last === 0 && size < window * GROW_AT_MOST) {
      size *= 2;
      continue;
    }
    if (last === 0) {
      // One cluster fills the window. Its characters are normalized one by one whatever its
      // exact end (a cluster of 6 UTF-8 bytes or more is), so its head goes out as one piece
      // and the search goes on from inside it: looking for its end by growing the window would
      // be quadratic again. Only a cluster over GROW_AT_MOST windows takes this path.
      let cut = Math.max(pos + 1, end - Math.min(32, size >> 2));
      if (cut - pos > 1 && isHighSurrogate(text.charCodeAt(cut - 1))) cut--;
      yield text.slice(pos, cut);
      pos = cut;
      continue;
    }
    pending.pop();
    yield* pending;
    pos += last;
    size = window;
  }
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function offset(unit: number): number {
  return (unit >>> 10) << ((unit & 0x200) >>> 6);
}

function label(unit: number): number {
  return (unit & 0x800000ff) >>> 0;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
