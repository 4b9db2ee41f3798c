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

  normalize(text: string): string {
    let out = '';
    for (const { segment } of this.segmenter.segment(text)) {
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
