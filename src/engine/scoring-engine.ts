/**
 * The reranking engine, independent of MCP: tokenizes pairs, scores them through the
 * shared batch queue and ranks documents. Everything a transport or a CLI needs goes
 * through here.
 */
import type { CrossEncoder } from '../model/cross-encoder.js';
import { BatchQueue, type SubmitOptions } from './batch-queue.js';
import { mapInSlices } from './yield.js';

export interface Pair {
  query: string;
  document: string;
}

export interface PairScore {
  score: number;
  logit: number;
  truncated: boolean;
}

export interface RankedDocument extends PairScore {
  index: number;
}

export interface EngineOptions {
  maxBatchTokens: number;
  batchWaitMs: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = { maxBatchTokens: 4096, batchWaitMs: 2 };

export class ScoringEngine {
  readonly queue: BatchQueue;
  private inFlight = 0;
  private retired: (() => void) | undefined;

  constructor(
    readonly model: CrossEncoder,
    readonly options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
  ) {
    this.queue = new BatchQueue((batch) => model.session.run(batch), options);
  }

  async scorePairs(pairs: readonly Pair[], options: SubmitOptions = {}): Promise<PairScore[]> {
    this.inFlight++;
    try {
      const encoded = await mapInSlices(pairs, (p) => this.model.encode(p.query, p.document), options.signal);
      const rows = await this.queue.submit(encoded, options);
      return rows.map((row, i) => ({ ...this.model.scoreRow(row), truncated: encoded[i].truncated }));
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.retired?.();
    }
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

  /**
   * Scores in fixed batches of `batchSize` in input order, bypassing the length-sorted queue,
   * as sentence-transformers' predict(batch_size=N) does. Dynamic int8 quantization scales
   * each batch by its own value range, so only the same batch composition reproduces a
   * Python int8 run to the last digits; fp32 scores do not depend on it.
   */
  async scoreInInputOrder(pairs: readonly Pair[], batchSize: number): Promise<PairScore[]> {
    const scores: PairScore[] = [];
    for (let start = 0; start < pairs.length; start += batchSize) {
      const encoded = pairs.slice(start, start + batchSize).map((p) => this.model.encode(p.query, p.document));
      const { logits, labels } = await this.model.session.run(encoded);
      encoded.forEach((e, row) => scores.push({ ...this.model.scoreRow(logits.subarray(row * labels, (row + 1) * labels)), truncated: e.truncated }));
    }
    return scores;
  }

  /** Scores of every document, best first; equal scores keep input order. */
  async rerank(query: string, documents: readonly string[], options: SubmitOptions = {}): Promise<RankedDocument[]> {
    const scores = await this.scorePairs(
      documents.map((document) => ({ query, document })),
      options,
    );
    return rankByScore(scores.map((s, index) => ({ ...s, index })));
  }
}

export function rankByScore<T extends { score: number; index: number }>(results: T[]): T[] {
  return results.sort((a, b) => b.score - a.score || a.index - b.index);
}
