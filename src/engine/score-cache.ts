/**
 * Scores already computed, keyed by model identity, the scoring settings and hashes of the
 * query and document text, so an agent repeating a call (it often does) pays nothing, and a
 * swapped model never answers from its predecessor's entries. Bounded: least recently used
 * entries go first.
 */
import { textHash } from '../tokenizer/tokenizer-service.js';

export interface CachedScore {
  logit: number;
  score: number;
  truncated: boolean;
  windows: number;
}

export { textHash };

export class ScoreCache {
  private readonly entries = new Map<string, CachedScore>();
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {}

  get(key: string): CachedScore | undefined {
    const found = this.entries.get(key);
    if (found === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Map keeps insertion order: re-inserting marks the entry most recently used.
    this.entries.delete(key);
    this.entries.set(key, found);
    return found;
  }

  set(key: string, value: CachedScore): void {
    if (this.capacity <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }

  stats(): { entries: number; capacity: number; hits: number; misses: number } {
    return { entries: this.entries.size, capacity: this.capacity, hits: this.hits, misses: this.misses };
  }
}
