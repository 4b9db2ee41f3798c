/**
 * The SentencePiece Unigram model as the Rust crate runs it: the Viterbi best path over every
 * vocabulary piece that starts at each character; a character no piece of its own length
 * covers may be `<unk>` at the minimum score minus 10; consecutive `<unk>` pieces are fused
 * into one token (looked up again, as Rust does, then `<unk>`, or bytes with byte_fallback).
 * Ties keep the candidate found first: shorter pieces before longer ones, pieces before `<unk>`.
 *
 * Pieces are kept in one sorted array and prefix ranges are narrowed by binary search, so a
 * 250 000-piece vocabulary costs its strings and one index array, not a trie of Maps.
 */
const UNK_PENALTY = 10;
const CACHE_MAX_WORDS = 20000;
const CACHE_MAX_WORD_LENGTH = 256;

export interface UnigramConfig {
  vocab: [string, number][];
  unk_id?: number | null;
  byte_fallback?: boolean;
}

export class UnigramModel {
  private readonly pieces: string[];
  private readonly scores: Float64Array;
  private readonly sorted: Int32Array;
  private readonly ids = new Map<string, number>();
  private readonly unkId: number | null;
  private readonly unkScore: number;
  private readonly byteFallback: boolean;
  private readonly cache = new Map<string, number[]>();

  constructor(config: UnigramConfig) {
    this.pieces = config.vocab.map(([p]) => p);
    this.scores = Float64Array.from(config.vocab.map(([, s]) => s));
    let min = Infinity;
    config.vocab.forEach(([piece, score], id) => {
      // A later duplicate overwrites an earlier one, as in the Rust map.
      this.ids.set(piece, id);
      if (score < min) min = score;
    });
    this.unkId = config.unk_id ?? null;
    this.unkScore = min - UNK_PENALTY;
    this.byteFallback = config.byte_fallback ?? false;
    const order = Array.from(this.pieces.keys()).filter((i) => this.pieces[i] !== '' && this.ids.get(this.pieces[i]) === i);
    order.sort((a, b) => (this.pieces[a] < this.pieces[b] ? -1 : this.pieces[a] > this.pieces[b] ? 1 : 0));
    this.sorted = Int32Array.from(order);
  }

  /** First index in [lo, hi) whose piece has a code unit at `at` not below `unit` (strict: above). */
  private bound(lo: number, hi: number, at: number, unit: number, strict: boolean): number {
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const piece = this.pieces[this.sorted[mid]];
      const c = at < piece.length ? piece.charCodeAt(at) : -1;
      if (strict ? c <= unit : c < unit) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Ids of one pre-token. */
  encode(word: string): number[] {
    if (word === '') return [];
    const cached = this.cache.get(word);
    if (cached) return cached;
    const ids = this.viterbi(word);
    if (word.length <= CACHE_MAX_WORD_LENGTH) {
      if (this.cache.size >= CACHE_MAX_WORDS) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  private viterbi(word: string): number[] {
    const n = word.length;
    // Indexed by UTF-16 position; only code point boundaries are ever reached.
    const best = new Float64Array(n + 1);
    const from = new Int32Array(n + 1).fill(-1);
    const via = new Int32Array(n + 1);
    const reach = (end: number, start: number, score: number, id: number): void => {
      const candidate = best[start] + score;
      if (from[end] < 0 || candidate > best[end]) {
        best[end] = candidate;
        from[end] = start;
        via[end] = id;
      }
    };
    for (let start = 0; start < n; ) {
      const charLength = word.codePointAt(start)! > 0xffff ? 2 : 1;
      let single = false;
      let lo = 0;
      let hi = this.sorted.length;
      for (let at = start; at < n; at++) {
        const depth = at - start;
        const unit = word.charCodeAt(at);
        lo = this.bound(lo, hi, depth, unit, false);
        hi = this.bound(lo, hi, depth, unit, true);
        if (lo >= hi) break;
        const id = this.sorted[lo];
        if (this.pieces[id].length === depth + 1) {
          reach(at + 1, start, this.scores[id], id);
          if (depth + 1 === charLength) single = true;
          lo++;
        }
      }
      if (!single) {
        if (this.unkId === null) throw new Error(`the Unigram model has no unk_id for ${JSON.stringify(String.fromCodePoint(word.codePointAt(start)!))}`);
        reach(start + charLength, start, this.unkScore, this.unkId);
      }
      start += charLength;
    }
    // Walk back, fusing runs of <unk> into one piece.
    const out: number[] = [];
    let fused = '';
    const flush = (): void => {
      if (fused === '') return;
      const pieces = this.lookup(fused);
      for (let k = pieces.length - 1; k >= 0; k--) out.push(pieces[k]);
      fused = '';
    };
    for (let end = n; end > 0; end = from[end]) {
      const start = from[end];
      if (via[end] === this.unkId) {
        fused = word.slice(start, end) + fused;
      } else {
        flush();
        out.push(via[end]);
      }
    }
    flush();
    return out.reverse();
  }

  private lookup(piece: string): number[] {
    const id = this.ids.get(piece);
    if (id !== undefined) return [id];
    if (this.byteFallback) {
      const bytes = Array.from(Buffer.from(piece, 'utf8'), (b) => this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
      if (bytes.every((b) => b !== undefined)) return bytes as number[];
    }
    return [this.unkId!];
  }
}
