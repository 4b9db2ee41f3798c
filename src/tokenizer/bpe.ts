/**
 * The BPE model as the Rust crate applies it to one pre-token (models/bpe: merge_word and
 * Word::merge_all): each character looked up (with continuing_subword_prefix /
 * end_of_word_suffix, byte fallback, unk fusing), then merges taken from a heap ordered by
 * rank and then position, each checked against the current neighbours before it is applied.
 * Long words cost O(n log n), not O(n²). Results of short words are remembered, which only
 * saves time: the merges of a word never depend on what was tokenized before.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export class BpeConfigError extends Error {}

const CACHE_MAX_WORDS = 20000;
const CACHE_MAX_WORD_LENGTH = 256;
const PAIR = 0x400000; // ids stay below 2^22 in any real vocabulary; checked in the constructor

export class BpeModel {
  private readonly vocab = new Map<string, number>();
  /** (a * PAIR + b) -> rank * PAIR + new id */
  private readonly merges = new Map<number, number>();
  private readonly unkToken: string | null;
  private readonly prefix: string | null;
  private readonly suffix: string | null;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  private readonly cache = new Map<string, number[]>();

  constructor(config: Json) {
    if (config.dropout != null && config.dropout !== 0) throw new BpeConfigError(`BPE dropout ${config.dropout} (random merges)`);
    for (const [token, id] of Object.entries(config.vocab as Record<string, number>)) {
      if (!Number.isInteger(id) || id < 0 || id >= PAIR) throw new BpeConfigError(`BPE id ${id} out of range`);
      this.vocab.set(token, id);
    }
    this.unkToken = config.unk_token ?? null;
    this.prefix = config.continuing_subword_prefix ?? null;
    this.suffix = config.end_of_word_suffix ?? null;
    this.fuseUnk = config.fuse_unk ?? false;
    this.byteFallback = config.byte_fallback ?? false;
    this.ignoreMerges = config.ignore_merges ?? false;
    const prefixBytes = this.prefix === null ? 0 : Buffer.byteLength(this.prefix, 'utf8');
    (config.merges as (string | [string, string])[]).forEach((merge, rank) => {
      let a: string;
      let b: string;
      if (typeof merge === 'string') {
        const parts = merge.split(' ');
        if (parts.length !== 2) throw new BpeConfigError(`BPE merge ${JSON.stringify(merge)} is not two tokens`);
        [a, b] = parts;
      } else {
        [a, b] = merge;
      }
      const idA = this.vocab.get(a);
      const idB = this.vocab.get(b);
      // The new token drops the continuing prefix's bytes from b, whether or not b starts with it (as Rust slices).
      const merged = Buffer.concat([Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8').subarray(prefixBytes)]).toString('utf8');
      const idNew = this.vocab.get(merged);
      if (idA === undefined || idB === undefined || idNew === undefined) throw new BpeConfigError(`BPE merge ${JSON.stringify([a, b])} names a token outside the vocabulary`);
      // A repeated pair keeps its last rank, as the crate's map does.
      this.merges.set(idA * PAIR + idB, rank * PAIR + idNew);
    });
  }

  id(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** Ids of one pre-token (the array is shared: do not change it). */
  encode(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const ids = this.tokenize(word);
    if (word.length <= CACHE_MAX_WORD_LENGTH) {
      if (this.cache.size >= CACHE_MAX_WORDS) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  private tokenize(word: string): number[] {
    if (word === '') return [];
    if (this.ignoreMerges) {
      const whole = this.vocab.get(word);
      if (whole !== undefined) return [whole];
    }
    const symbols: number[] = [];
    let unk = -1;
    const chars = Array.from(word);
    chars.forEach((ch, k) => {
      let s = ch;
      if (k > 0 && this.prefix !== null) s = this.prefix + s;
      if (k === chars.length - 1 && this.suffix !== null) s = s + this.suffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        if (unk >= 0) symbols.push(unk);
        unk = -1;
        symbols.push(id);
        return;
      }
      if (this.byteFallback) {
        const bytes = Array.from(Buffer.from(s, 'utf8'), (b) => this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
        if (bytes.every((b) => b !== undefined)) {
          // A pending unk stays pending across byte-fallback tokens, as in the crate.
          for (const b of bytes) symbols.push(b as number);
          return;
        }
      }
      if (this.unkToken !== null) {
        const unkId = this.vocab.get(this.unkToken);
        if (unkId === undefined) throw new BpeConfigError(`BPE unk_token ${this.unkToken} is not in the vocabulary`);
        if (unk >= 0 && !this.fuseUnk) symbols.push(unk);
        unk = unkId;
      }
    });
    if (unk >= 0) symbols.push(unk);
    return this.mergeAll(symbols);
  }

  private mergeAll(c: number[]): number[] {
    const n = c.length;
    if (n < 2) return c;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const heap = new MergeHeap();
    for (let i = 0; i + 1 < n; i++) {
      const m = this.merges.get(c[i] * PAIR + c[i + 1]);
      if (m !== undefined) heap.push(Math.floor(m / PAIR), i, m % PAIR);
    }
    while (heap.size > 0) {
      const [, pos, newId] = heap.pop();
      if (!alive[pos] || next[pos] < 0) continue;
      const right = next[pos];
      const current = this.merges.get(c[pos] * PAIR + c[right]);
      if (current === undefined || current % PAIR !== newId) continue;
      c[pos] = newId;
      alive[right] = 0;
      next[pos] = next[right];
      if (next[right] >= 0) prev[next[right]] = pos;
      if (prev[pos] >= 0) {
        const m = this.merges.get(c[prev[pos]] * PAIR + c[pos]);
        if (m !== undefined) heap.push(Math.floor(m / PAIR), prev[pos], m % PAIR);
      }
      if (next[pos] >= 0) {
        const m = this.merges.get(c[pos] * PAIR + c[next[pos]]);
        if (m !== undefined) heap.push(Math.floor(m / PAIR), pos, m % PAIR);
      }
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) if (alive[i]) out.push(c[i]);
    return out;
  }
}

/** Min-heap on (rank, pos): the lowest rank first, the leftmost among equal ranks. */
class MergeHeap {
  private readonly ranks: number[] = [];
  private readonly positions: number[] = [];
  private readonly ids: number[] = [];

  get size(): number {
    return this.ranks.length;
  }

  private less(i: number, j: number): boolean {
    return this.ranks[i] < this.ranks[j] || (this.ranks[i] === this.ranks[j] && this.positions[i] < this.positions[j]);
  }

  private swap(i: number, j: number): void {
    [this.ranks[i], this.ranks[j]] = [this.ranks[j], this.ranks[i]];
    [this.positions[i], this.positions[j]] = [this.positions[j], this.positions[i]];
    [this.ids[i], this.ids[j]] = [this.ids[j], this.ids[i]];
  }

  push(rank: number, pos: number, id: number): void {
    this.ranks.push(rank);
    this.positions.push(pos);
    this.ids.push(id);
    for (let i = this.ranks.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [number, number, number] {
    const top: [number, number, number] = [this.ranks[0], this.positions[0], this.ids[0]];
    const last = this.ranks.length - 1;
    this.swap(0, last);
    this.ranks.pop();
    this.positions.pop();
    this.ids.pop();
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.ranks.length && this.less(l, m)) m = l;
      if (r < this.ranks.length && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}
