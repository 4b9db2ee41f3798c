/**
 * One queue in front of the ONNX session. Pairs from concurrent calls are pooled in rounds
 * of whole calls, sorted by length and run in shared batches, one batch at a time (each run
 * already uses every core). Between batches the queue looks at each call again: a cancelled
 * call loses its remaining pairs, and a failing batch is retried call by call so one call's
 * error never reaches another.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EncodedPair } from '../model/onnx-session.js';
import { planBatches } from './batch-plan.js';

export type RunBatch = (pairs: readonly EncodedPair[]) => Promise<{ logits: Float32Array; labels: number }>;

export interface SubmitOptions {
  signal?: AbortSignal;
  /** Called after each batch that held pairs of this call. */
  onProgress?: (done: number, total: number) => void;
}

export interface BatchQueueOptions {
  maxBatchTokens: number;
  /** How long an idle queue waits for other calls to join the first batch. */
  batchWaitMs: number;
}

class Job {
  readonly rows: Float32Array[];
  done = 0;
  settled = false;
  constructor(
    readonly total: number,
    readonly options: SubmitOptions,
    readonly resolve: (rows: Float32Array[]) => void,
    readonly reject: (err: unknown) => void,
  ) {
    this.rows = new Array(total);
  }

  fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }

  deliver(index: number, row: Float32Array): void {
    this.rows[index] = row;
    this.done++;
  }
}

interface Item {
  job: Job;
  index: number;
  pair: EncodedPair;
  length: number;
}

/**
 * A round (pairs sorted and batched together) takes whole calls in arrival order until it
 * holds this many batches' worth of tokens. Pooling every waiting call into one round made
 * all of them finish together at its end; rounds this size kept throughput (8 concurrent
 * 20-document calls: within 3 %, inside run-to-run noise) and cut their mean latency by a
 * third (scripts/batch-wait.ts, docs/benchmarks.md). A call is never split, so a large
 * call is still sorted as a whole.
 */
const ROUND_BATCHES = 4;

/** How many of `items` (grouped by call, calls in arrival order) the next round takes. */
function roundSize(items: readonly Item[], roundTokens: number): number {
  let taken = 0;
  let tokens = 0;
  while (taken < items.length && (tokens < roundTokens || items[taken].job === items[taken - 1].job)) tokens += items[taken++].length;
  return taken;
}

export class AbortedError extends Error {
  constructor() {
    super('the request was cancelled');
    this.name = 'AbortError';
  }
}

export class BatchQueue {
  private pending: Item[] = [];
  private draining = false;
  /** Batches run and pairs scored since start, for stats. */
  readonly counters = { batches: 0, pairs: 0, paddedTokens: 0, tokens: 0 };

  constructor(
    private readonly runBatch: RunBatch,
    private readonly options: BatchQueueOptions,
  ) {}

  /** Logit rows for `pairs`, in their order. */
  submit(pairs: readonly EncodedPair[], options: SubmitOptions = {}): Promise<Float32Array[]> {
    if (pairs.length === 0) return Promise.resolve([]);
    if (options.signal?.aborted) return Promise.reject(new AbortedError());
    return new Promise((resolve, reject) => {
      const job = new Job(pairs.length, options, resolve, reject);
      options.signal?.addEventListener('abort', () => job.fail(new AbortedError()), { once: true });
      pairs.forEach((pair, index) => this.pending.push({ job, index, pair, length: pair.inputIds.length }));
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      if (this.options.batchWaitMs > 0) await sleep(this.options.batchWaitMs);
      while (this.pending.length > 0) {
        const live = this.pending.filter((item) => !item.job.settled);
        const taken = roundSize(live, ROUND_BATCHES * this.options.maxBatchTokens);
        const round = live.slice(0, taken);
        this.pending = live.slice(taken);
        for (const batch of planBatches(round, this.options.maxBatchTokens)) {
          const wanted = batch.filter((item) => !item.job.settled);
          if (wanted.length > 0) await this.runShared(wanted);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async runShared(items: Item[]): Promise<void> {
    const jobs = new Set(items.map((item) => item.job));
    try {
      await this.runAndDeliver(items);
    } catch (err) {
      if (jobs.size === 1) {
        items[0].job.fail(err);
        return;
      }
      for (const job of jobs) {
        try {
          await this.runAndDeliver(items.filter((item) => item.job === job));
        } catch (jobErr) {
          job.fail(jobErr);
        }
      }
      return;
    }
  }

  private async runAndDeliver(items: Item[]): Promise<void> {
    const { logits, labels } = await this.runBatch(items.map((item) => item.pair));
    const width = items.reduce((m, item) => Math.max(m, item.length), 0);
    this.counters.batches++;
    this.counters.pairs += items.length;
    this.counters.paddedTokens += width * items.length;
    this.counters.tokens += items.reduce((n, item) => n + item.length, 0);
    const touched = new Set<Job>();
    items.forEach((item, row) => {
      if (item.job.settled) return;
      item.job.deliver(item.index, logits.slice(row * labels, (row + 1) * labels));
      touched.add(item.job);
    });
    for (const job of touched) {
      job.options.onProgress?.(job.done, job.total);
      if (job.done === job.total && !job.settled) {
        job.settled = true;
        job.resolve(job.rows);
      }
    }
  }
}
