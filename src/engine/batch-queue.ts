/**
 * One queue in front of the ONNX session, fair across calls. Each call's pairs are sorted by
 * length and cut into batches when it arrives (small calls that arrive together are pooled
 * and share batches); then batches from different calls interleave, one at a time (each run
 * already uses every core). The call with the least work left goes first, but every other
 * turn goes to the one that has waited longest for a batch. A small call thus waits about one
 * batch behind a large one, calls that arrive together still finish one after another, and
 * none starves, however many small calls keep coming.
 * Between batches the queue looks at each call again: a cancelled call loses its remaining
 * batches, and a failing batch is retried call by call so one call's error never reaches another.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EncodedPair } from '../model/onnx-session.js';
import { planBatches } from './batch-plan.js';

export type RunBatch = (pairs: readonly EncodedPair[]) => Promise<{ logits: Float32Array; labels: number }>;

export interface SubmitOptions {
  signal?: AbortSignal;
  /** Called after each batch that held pairs of this call. */
  onProgress?: (done: number, total: number) => void;
  /**
   * performance.now() by which the call must be answered: then it resolves with the rows
   * scored so far (the others left empty), launches no further batch, and does not wait for
   * the one in flight. Its batches are cut one at a time to what fits in the time left.
   */
  deadline?: number;
  /** Told, once every pair is scored, how the call's time was spent (see QueueTimings). */
  onQueueTimings?: (timings: QueueTimings) => void;
}

/**
 * Where a call's time went between submit and its last row: `inferenceMs` sums the runs of
 * the batches that held its pairs (a shared batch counts whole for each call in it, as TEI
 * counts it); `queueMs` is the rest, spent waiting behind other batches.
 */
export interface QueueTimings {
  /** performance.now() at submit. */
  submittedAt: number;
  queueMs: number;
  inferenceMs: number;
  batches: number;
}

/** One batch as it was run, for the batch-size and batch-token histograms. */
export interface BatchRun {
  pairs: number;
  /** Padded tokens: pairs × the longest pair, what the model computed. */
  tokens: number;
  ms: number;
}

export interface BatchQueueOptions {
  maxBatchTokens: number;
  /** How long an idle queue waits for other calls to join the first batch. */
  batchWaitMs: number;
  /** The pace before any batch has run (ms per padded token), e.g. the model's test inference at load. */
  initialMsPerToken?: number;
}

class Job {
  readonly rows: Float32Array[];
  done = 0;
  settled = false;
  readonly submittedAt = performance.now();
  inferenceMs = 0;
  batches = 0;
  /** Undoes the abort listener once the job is over, so a long-lived signal keeps nothing. */
  unlisten: () => void = () => undefined;
  /** Its pairs, until they are batched. */
  items: Item[] = [];
  constructor(
    readonly total: number,
    readonly tokens: number,
    readonly options: SubmitOptions,
    private readonly onResolve: (rows: Float32Array[]) => void,
    private readonly onReject: (err: unknown) => void,
  ) {
    this.rows = new Array(total);
  }

  fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.unlisten();
    this.onReject(err);
  }

  deliver(index: number, row: Float32Array): void {
    this.rows[index] = row;
    this.done++;
  }

  /** Resolves with what is scored now: the rows not yet scored stay empty. */
  finish(): void {
    if (this.settled) return;
    this.settled = true;
    this.unlisten();
    const total = performance.now() - this.submittedAt;
    this.options.onQueueTimings?.({ submittedAt: this.submittedAt, queueMs: Math.max(0, total - this.inferenceMs), inferenceMs: this.inferenceMs, batches: this.batches });
    this.onResolve(this.rows);
  }
}

interface Item {
  job: Job;
  index: number;
  pair: EncodedPair;
  length: number;
}

/**
 * Small calls that arrive together are pooled until a group holds this many batches' worth
 * of tokens, then sorted and batched as one: alone, each would leave its batches half empty.
 * Pooling every waiting call into one group made all of them finish together at its end;
 * groups this size kept throughput and cut mean latency by a third (scripts/batch-wait.ts,
 * docs/benchmarks.md). A call is never split, and a call this large on its own is always
 * batched alone, so its batch composition (which int8 scores depend on) is its own.
 */
const GROUP_BATCHES = 4;

/** Pairs batched together: one call, or small calls that arrived together. */
class Group {
  private next = 0;
  /** Padded tokens of the batches not yet run: the work left, for shortest-first. */
  remaining: number;
  /** The turn it last had a batch; -1: none yet. */
  lastServed = -1;

  constructor(
    readonly jobs: readonly Job[],
    private batches: Item[][],
    /** For a call with a deadline: the batch budget now, so the rest is cut again before each batch. */
    private readonly budget?: () => number,
  ) {
    this.remaining = batches.reduce((n, b) => n + cost(b), 0);
  }

  get live(): boolean {
    return this.next < this.batches.length && this.jobs.some((job) => !job.settled);
  }

  /** Padded tokens of the next batch, cut to the budget now when the group has one. */
  nextCost(): number {
    if (this.budget) this.batches = [...this.batches.slice(0, this.next), ...planBatches(this.batches.slice(this.next).flat(), this.budget())];
    return cost(this.batches[this.next]);
  }

  /** The next batch's pairs of calls still waiting for them (none if all were cancelled). */
  take(): Item[] {
    const batch = this.batches[this.next++];
    this.remaining -= cost(batch);
    return batch.filter((item) => !item.job.settled);
  }
}

/**
 * Every this many turns, the longest-waiting group gets the batch instead of the shortest, so
 * each of N groups gets at least 1 / (ROTATE_EVERY × N) of the batches. With 4, one large call
 * against 7 sessions sending small calls back to back got 1/32 of the batches and had not
 * finished after 15 min (npm run load, large-call scenario); with 2 it gets at least half its fair share. The
 * price: eight equal 40-pair calls sent at once (test/engine.test.ts's backlog) are answered on
 * average after 75 % of the work (4: 64 %; first come, first served, as the queue was before:
 * 56 %, but a large call then held up everything behind it; round robin: all near the end).
 */
const ROTATE_EVERY = 2;

const cost = (batch: readonly Item[]): number => batch.length * batch.reduce((m, item) => Math.max(m, item.length), 0);

export class AbortedError extends Error {
  constructor() {
    super('the request was cancelled');
    this.name = 'AbortError';
  }
}

export class BatchQueue {
  /** Calls not yet batched, in arrival order. */
  private arrived: Job[] = [];
  /** Groups with batches left, oldest first. */
  private groups: Group[] = [];
  private turn = 0;
  private draining = false;
  /** Batches run and pairs scored since start, for stats. */
  readonly counters = { batches: 0, pairs: 0, paddedTokens: 0, tokens: 0 };
  /** Told of every batch run; whoever reports metrics sets it (the engine imports no metrics library). */
  onBatch: ((batch: BatchRun) => void) | undefined;
  /** Milliseconds per padded token of recent batches (0: none run yet), to size batches under a deadline. */
  private msPerToken = 0;

  constructor(
    private readonly runBatch: RunBatch,
    private readonly options: BatchQueueOptions,
  ) {
    this.msPerToken = options.initialMsPerToken ?? 0;
  }

  /** Logit rows for `pairs`, in their order. */
  submit(pairs: readonly EncodedPair[], options: SubmitOptions = {}): Promise<Float32Array[]> {
    if (pairs.length === 0) return Promise.resolve([]);
    if (options.signal?.aborted) return Promise.reject(new AbortedError());
    const tokens = pairs.reduce((n, pair) => n + pair.inputIds.length, 0);
    return new Promise((resolve, reject) => {
      const job = new Job(pairs.length, tokens, options, resolve, reject);
      job.items = pairs.map((pair, index) => ({ job, index, pair, length: pair.inputIds.length }));
      const signal = options.signal;
      if (signal) {
        const onAbort = () => job.fail(new AbortedError());
        signal.addEventListener('abort', onAbort, { once: true });
        job.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      if (options.deadline !== undefined) {
        const timer = setTimeout(() => job.finish(), Math.max(0, options.deadline - performance.now()));
        const unlisten = job.unlisten;
        job.unlisten = () => {
          clearTimeout(timer);
          unlisten();
        };
      }
      this.arrived.push(job);
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      if (this.options.batchWaitMs > 0) await sleep(this.options.batchWaitMs);
      for (;;) {
        this.groupArrivals();
        this.groups = this.groups.filter((g) => g.live);
        if (this.groups.length === 0) break;
        const group = this.pick();
        const deadline = group.jobs.length === 1 ? group.jobs[0].options.deadline : undefined;
        // ONNX Runtime's run holds this thread until it returns, so the answer waits for the
        // batch in flight: one that would end after the deadline at the recent pace is not started.
        if (deadline !== undefined && performance.now() + group.nextCost() * this.msPerToken >= deadline) {
          group.jobs[0].finish();
          continue;
        }
        const batch = group.take();
        if (batch.length > 0) await this.runShared(batch);
      }
    } finally {
      this.draining = false;
    }
  }

  /** Batches the calls that arrived since the last batch: whole calls in arrival order, small ones pooled. */
  private groupArrivals(): void {
    const groupTokens = GROUP_BATCHES * this.options.maxBatchTokens;
    const arrived = this.arrived.filter((job) => !job.settled);
    for (const job of this.arrived) if (job.settled) job.items = [];
    this.arrived = [];
    let i = 0;
    while (i < arrived.length) {
      const first = arrived[i++];
      const deadline = first.options.deadline;
      if (deadline !== undefined) {
        // Alone, so its batches can be cut to the time it has left.
        const budget = () => this.deadlineBudget(deadline);
        this.groups.push(new Group([first], planBatches(first.items, budget()), budget));
        first.items = [];
        continue;
      }
      const jobs = [first];
      let tokens = jobs[0].tokens;
      while (i < arrived.length && tokens < groupTokens && arrived[i].tokens < groupTokens && arrived[i].options.deadline === undefined) {
        tokens += arrived[i].tokens;
        jobs.push(arrived[i++]);
      }
      const items = jobs.flatMap((job) => job.items);
      for (const job of jobs) job.items = [];
      this.groups.push(new Group(jobs, planBatches(items, this.options.maxBatchTokens)));
    }
  }

  /**
   * Tokens of a batch that should end in half the time left before `deadline`, at the pace of
   * recent batches, so that batches get smaller as the deadline nears and the last one ends
   * close to it. With no pace known (no batch run, no initial pace), a batch of one pair measures
   * it. A budget under one pair still makes batches of one pair (planBatches).
   */
  private deadlineBudget(deadline: number): number {
    if (this.msPerToken === 0) return 1;
    return Math.min(this.options.maxBatchTokens, Math.floor((deadline - performance.now()) / 2 / this.msPerToken));
  }

  /**
   * Least work left (shortest-remaining-first: small calls before large ones, and of calls
   * that arrived together one finishes after another instead of all at the end); every
   * ROTATE_EVERY-th turn, the group that has waited longest since its last batch (one not
   * started yet first), so that a stream of small calls can starve neither a large call nor
   * a medium one. Ties go to the oldest.
   */
  private pick(): Group {
    this.turn++;
    let chosen = this.groups[0];
    if (this.turn % ROTATE_EVERY !== 0) {
      for (const g of this.groups) if (g.remaining < chosen.remaining) chosen = g;
    } else {
      for (const g of this.groups) if (g.lastServed < chosen.lastServed) chosen = g;
    }
    chosen.lastServed = this.turn;
    return chosen;
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

  /** Calls submitted and not yet answered (TEI's te_queue_size counts requests, not pairs). */
  get waiting(): number {
    const jobs = new Set(this.arrived.filter((job) => !job.settled));
    for (const group of this.groups) for (const job of group.jobs) if (!job.settled) jobs.add(job);
    return jobs.size;
  }

  private async runAndDeliver(items: Item[]): Promise<void> {
    const started = performance.now();
    const { logits, labels } = await this.runBatch(items.map((item) => item.pair));
    const ms = performance.now() - started;
    const width = items.reduce((m, item) => Math.max(m, item.length), 0);
    this.onBatch?.({ pairs: items.length, tokens: width * items.length, ms });
    const pace = (performance.now() - started) / (width * items.length);
    this.msPerToken = this.msPerToken === 0 ? pace : 0.5 * this.msPerToken + 0.5 * pace;
    this.counters.batches++;
    this.counters.pairs += items.length;
    this.counters.paddedTokens += width * items.length;
    this.counters.tokens += items.reduce((n, item) => n + item.length, 0);
    const touched = new Set<Job>();
    items.forEach((item, row) => {
      if (item.job.settled) return;
      item.job.deliver(item.index, logits.slice(row * labels, (row + 1) * labels));
      if (!touched.has(item.job)) {
        item.job.inferenceMs += ms;
        item.job.batches++;
      }
      touched.add(item.job);
    });
    for (const job of touched) {
      job.options.onProgress?.(job.done, job.total);
      if (job.done === job.total) job.finish();
    }
  }
}
