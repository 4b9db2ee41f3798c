/**
 * The timings the engine hands out for each call, in one place at the bottom of the tree: the
 * engine fills them in and the observability module reports them, and neither imports the other.
 */
/**
 * One call's time in the engine, in milliseconds, with the phases TEI reports
 * (x-tokenization-time, x-queue-time, x-inference-time). Instants are performance.now() values.
 */
export interface EngineTimings {
  startedAt: number;
  /** Hashing for the cache, and tokenizing the pairs not cached. */
  tokenizationMs: number;
  /** When the pairs were handed to the batch queue: startedAt + tokenizationMs. */
  queuedAt: number;
  queueMs: number;
  inferenceMs: number;
  /** Tokens sent to the model (cached pairs are free). */
  tokens: number;
  /** Characters of every query and document of the call, cached or not (TEI's x-compute-characters). */
  characters: number;
  pairs: number;
  /** Pairs answered from the score cache (or repeated within the call). */
  cached: number;
  batches: number;
}
