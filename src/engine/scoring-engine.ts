/**
 * The reranking engine, independent of MCP: tokenizes pairs, answers what it can from the
 * score cache, scores the rest through the shared batch queue and ranks documents.
 * Everything a transport or a CLI needs goes through here.
 */
import type { CrossEncoder } from '../model/cross-encoder.js';
import type { PairEncoding } from '../tokenizer/pair-tokenizer.js';
import { BatchQueue, type SubmitOptions } from './batch-queue.js';
import { ScoreCache, textHash, type CachedScore } from './score-cache.js';
import { mapInSlices } from './yield.js';

export interface Pair {
  query: string;
  document: string;
}

/** `truncate` cuts a long document to fit; `chunk` scores overlapping windows and keeps the best. */
export type LongDocuments = 'truncate' | 'chunk';

export interface PairScore {
  score: number;
  logit: number;
  truncated: boolean;
  /** How many windows of the document were scored (1 unless chunked). */
  windows: number;
}

export interface RankedDocument extends PairScore {
  index: number;
}

export interface ScoreOptions extends SubmitOptions {
  longDocuments?: LongDocuments;
  /** Told how many tokens the call sent to the model (cached pairs are free), for usage reports. */
  onTokens?: (tokens: number) => void;
}

export interface EngineOptions {
  maxBatchTokens: number;
  batchWaitMs: number;
  /** Tokens shared by neighbouring windows when a long document is chunked. */
  chunkOverlap: number;
  /**
   * Most tokens one call may send to the model, counted after truncation or chunking over
   * the pairs not already cached; 0: no limit. Larger calls are refused before any inference.
   */
  maxCallTokens: number;
}

/** A call that would send more tokens to the model than EngineOptions.maxCallTokens allows. */
export class CallTooLargeError extends Error {
  constructor(
    readonly limit: number,
    readonly counted: number,
    readonly pairsCounted: number,
    readonly pairs: number,
  ) {
    super(`this call needs more than ${limit} tokens of inference (the first ${pairsCounted} of the ${pairs} pairs it sends to the model already take ${counted} after truncation or chunking)`);
    this.name = 'CallTooLargeError';
  }
}

// 1024 tokens: measured with scripts/batch-budget.ts on 20-document calls (MiniLM-L6, 2 cores), 768-2048 tie and 4096 is
// 10-15 % slower; the smaller budget also bounds memory tighter.
// maxCallTokens: see the README's Options table (--max-call-tokens) for the measurement behind it.
export const DEFAULT_ENGINE_OPTIONS: EngineOptions = { maxBatchTokens: 1024, batchWaitMs: 2, chunkOverlap: 64, maxCallTokens: 512_000 };

export class ScoringEngine {
  readonly queue: BatchQueue;
  private inFlight = 0;
  private retired: (() => void) | undefined;

  constructor(
    readonly model: CrossEncoder,
    readonly options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
    readonly cache: ScoreCache = new ScoreCache(0),
  ) {
    this.queue = new BatchQueue((batch) => model.session.run(batch), options);
  }

  /** Scores in input order. Repeated pairs, within the call or from earlier calls, are scored once. */
  async scorePairs(pairs: readonly Pair[], options: ScoreOptions = {}): Promise<PairScore[]> {
    this.inFlight++;
    try {
      const mode = options.longDocuments ?? 'truncate';
      const keys = this.cacheKeys(pairs, mode);
      const results: (CachedScore | undefined)[] = keys.map((key) => this.cache.get(key));
      const firstOfKey = new Map<string, number>();
      pairs.forEach((_, i) => {
        if (results[i] === undefined && !firstOfKey.has(keys[i])) firstOfKey.set(keys[i], i);
      });
      const todo = [...firstOfKey.values()];
      const limit = this.options.maxCallTokens;
      let tokens = 0;
      const encoded = await mapInSlices(
        todo,
        (pairIndex, n) => {
          const windows = this.encode(pairs[pairIndex], mode);
          for (const w of windows) tokens += w.inputIds.length;
          // Counted as it goes, so a call far over the limit is refused without tokenizing all of it.
          if (limit > 0 && tokens > limit) throw new CallTooLargeError(limit, tokens, n + 1, todo.length);
          return windows;
        },
        options.signal,
      );
      options.onTokens?.(tokens);
      const rows = await this.queue.submit(encoded.flat(), { ...options, onProgress: pairProgress(options.onProgress, pairs.length, results.filter(Boolean).length) });
      let row = 0;
      todo.forEach((pairIndex, n) => {
        const windows = encoded[n];
        const scored = this.best(rows.slice(row, row + windows.length), windows);
        row += windows.length;
        this.cache.set(keys[pairIndex], scored);
        results[pairIndex] = scored;
      });
      return pairs.map((_, i) => results[i] ?? results[firstOfKey.get(keys[i])!]!);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.retired?.();
    }
  }

  private encode(pair: Pair, mode: LongDocuments): PairEncoding[] {
    return mode === 'chunk'
      ? this.model.tokenizer.encodeWindows(pair.query, pair.document, this.model.maxLength, this.options.chunkOverlap)
      : [this.model.encode(pair.query, pair.document)];
  }

  /** The best window's logit and score: activations are monotonic, so the highest logit wins. */
  private best(rows: Float32Array[], windows: PairEncoding[]): CachedScore {
    let bestIndex = 0;
    let bestLogit = -Infinity;
    rows.forEach((row, i) => {
      const { logit } = this.model.scoreRow(row);
      if (logit > bestLogit) {
        bestLogit = logit;
        bestIndex = i;
      }
    });
    return { ...this.model.scoreRow(rows[bestIndex]), truncated: windows[bestIndex].truncated, windows: windows.length };
  }

  private cacheKeys(pairs: readonly Pair[], mode: LongDocuments): string[] {
    const prefix = `${this.model.id}|${this.model.maxLength}|${mode}|${mode === 'chunk' ? this.options.chunkOverlap : 0}`;
    const queryHashes = new Map<string, string>();
    return pairs.map((p) => {
      let q = queryHashes.get(p.query);
      if (q === undefined) queryHashes.set(p.query, (q = textHash(p.query)));
      return `${prefix}|${q}|${textHash(p.document)}`;
    });
  }

  /**
   * Scores in fixed batches of `batchSize` in input order, bypassing the length-sorted queue
   * and the cache, as sentence-transformers' predict(batch_size=N) does. Dynamic int8
   * quantization scales each batch by its own value range, so only the same batch
   * composition reproduces a Python int8 run to the last digits; fp32 scores do not depend on it.
   */
  async scoreInInputOrder(pairs: readonly Pair[], batchSize: number): Promise<PairScore[]> {
    const scores: PairScore[] = [];
    for (let start = 0; start < pairs.length; start += batchSize) {
      const encoded = pairs.slice(start, start + batchSize).map((p) => this.model.encode(p.query, p.document));
      const { logits, labels } = await this.model.session.run(encoded);
      encoded.forEach((e, row) => scores.push({ ...this.model.scoreRow(logits.subarray(row * labels, (row + 1) * labels)), truncated: e.truncated, windows: 1 }));
    }
    return scores;
  }

  /** Scores of every document, best first; equal scores keep input order. */
  async rerank(query: string, documents: readonly string[], options: ScoreOptions = {}): Promise<RankedDocument[]> {
    const scores = await this.scorePairs(
      documents.map((document) => ({ query, document })),
      options,
    );
    return rankByScore(scores.map((s, index) => ({ ...s, index })));
  }

  /** Releases the model once the calls already running on it have finished. */
  retire(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.retired = () => {
        this.retired = undefined;
        resolve(this.model.release());
      };
      if (this.inFlight === 0) this.retired();
    });
  }
}

/**
 * Progress in the caller's terms: pairs of the call, cache hits counted as done from the
 * start, windows and repeats spread over the rest; reported only when it moves forward.
 */
function pairProgress(report: SubmitOptions['onProgress'], total: number, done: number): SubmitOptions['onProgress'] {
  if (!report) return undefined;
  let last = -1;
  return (windowsDone, windowsTotal) => {
    const progress = done + Math.floor(((total - done) * windowsDone) / windowsTotal);
    if (progress > last) report((last = progress), total);
  };
}

export function rankByScore<T extends { score: number; index: number }>(results: T[]): T[] {
  return results.sort((a, b) => b.score - a.score || a.index - b.index);
}
