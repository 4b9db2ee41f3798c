/**
 * The reranking engine, independent of MCP: tokenizes pairs, answers what it can from the
 * score cache, scores the rest through the shared batch queue and ranks documents.
 * Everything a transport or a CLI needs goes through here.
 */
import type { EngineTimings } from '../timings.js';
import { requireTokens, type CrossEncoder } from '../model/cross-encoder.js';
import type { LowerBound, PairEncoding } from '../tokenizer/pair-tokenizer.js';
import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PairTokenizer } from '../tokenizer/pair-tokenizer.js';
import type { TokenizerCall } from '../tokenizer/tokenizer-service.js';
import type { PromptOptions } from '../tokenizer/prompt-template.js';
import { AbortedError, BatchQueue, type SubmitOptions } from './batch-queue.js';
import type { EncodedPair } from '../model/onnx-session.js';
import { ScoreCache, textHash, type CachedScore } from './score-cache.js';

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
  /** Present (false) only when the call's deadline came before this pair was scored: score and logit are then NaN. */
  scored?: false;
}

export interface RankedDocument extends PairScore {
  index: number;
}

const UNSCORED: PairScore = { score: NaN, logit: NaN, truncated: false, windows: 0, scored: false };

export interface ScoreOptions extends SubmitOptions {
  longDocuments?: LongDocuments;
  /** For models with a prompt template: the task instruction (undefined: the template's default). */
  instruction?: string;
  /** Told how many tokens the call sent to the model (cached pairs are free), for usage reports. */
  onTokens?: (tokens: number) => void;
  /** Told, when the call succeeds, where its time went: the engine hands out timings and reports them nowhere itself. */
  onTimings?: (timings: EngineTimings) => void;
  /**
   * Milliseconds from now by which the call answers, with the pairs not scored by then marked
   * `scored: false` (EngineOptions.maxCallMs caps it).
   */
  deadlineMs?: number;
}

export type { EngineTimings } from '../timings.js';

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
  /** Most milliseconds a call may take before it answers with what is scored (see ScoreOptions.deadlineMs); 0: no limit. */
  maxCallMs?: number;
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

// A tokenization job: ~15 ms of BERT tokenization at most, one hostile 100 000-character
// document (the pairs of a
// usual call fit in one), so a small call behind a large one waits about that long per worker.
const JOB_CHARS = 64 * 1024;
const JOB_PAIRS = 64;
// Hashing runs at ~500 MB/s: jobs of 8 MB take ~16 ms.
const HASH_JOB_CHARS = 8 * 1024 * 1024;
const HASH_JOB_TEXTS = 4096;

const SLICE_CHARS = 1 << 20;

/** sha256 (base64url) of each text's UTF-8, fed a slice at a time with a turn of the event loop between slices. */
async function hashInSlices(texts: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  let sliceStart = performance.now();
  for (const text of texts) {
    const hash = createHash('sha256');
    for (let i = 0; i < text.length; ) {
      let end = Math.min(text.length, i + SLICE_CHARS);
      // Never between the halves of a surrogate pair: each slice must encode as the whole does.
      const last = text.charCodeAt(end - 1);
      if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
      hash.update(text.slice(i, end));
      i = end;
      if (performance.now() - sliceStart > 8) {
        await nextTurn();
        sliceStart = performance.now();
      }
    }
    out.push(hash.digest('base64url'));
  }
  return out;
}

/** PairTokenizer.leastTokens over `text`, a slice at a time (slices cut at a space, so no run is counted twice). */
async function leastTokensInSlices(text: string, stopAbove: number, bound: LowerBound): Promise<number> {
  let count = 0;
  for (let i = 0; i < text.length && count <= stopAbove; ) {
    let end = Math.min(text.length, i + SLICE_CHARS);
    const space = text.indexOf(' ', end);
    end = space < 0 || space - end > SLICE_CHARS ? (space < 0 ? text.length : space) : space;
    count += PairTokenizer.leastTokensOf(text.slice(i, end), stopAbove - count, bound);
    i = end;
    if (i < text.length) await nextTurn();
  }
  return count;
}

/** Consecutive runs of `items` of at most `maxSize` total size (a larger item alone) and `maxCount` items. */
function slices<T>(items: readonly T[], size: (item: T) => number, maxSize: number, maxCount: number): { start: number; items: T[] }[] {
  const out: { start: number; items: T[] }[] = [];
  let current: T[] = [];
  let currentSize = 0;
  let start = 0;
  items.forEach((item, i) => {
    const s = size(item);
    if (current.length > 0 && (currentSize + s > maxSize || current.length >= maxCount)) {
      out.push({ start, items: current });
      current = [];
      currentSize = 0;
      start = i;
    }
    current.push(item);
    currentSize += s;
  });
  if (current.length > 0) out.push({ start, items: current });
  return out;
}

export class ScoringEngine {
  readonly queue: BatchQueue;
  private inFlight = 0;
  private retired: (() => void) | undefined;

  constructor(
    readonly model: CrossEncoder,
    readonly options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
    readonly cache: ScoreCache = new ScoreCache(0),
  ) {
    // The load's test inference gives the pace a deadline's first batch is sized by.
    this.queue = new BatchQueue((batch) => model.session.run(batch), { ...options, initialMsPerToken: model.session.msPerToken });
  }

  /** Scores in input order. Repeated pairs, within the call or from earlier calls, are scored once. */
  async scorePairs(pairs: readonly Pair[], options: ScoreOptions = {}): Promise<PairScore[]> {
    this.inFlight++;
    const deadline = this.deadlineOf(options.deadlineMs);
    const call = this.model.tokenizers.call();
    const onAbort = () => call.cancel(new AbortedError());
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const startedAt = performance.now();
    try {
      if (options.signal?.aborted) throw new AbortedError();
      const mode = options.longDocuments ?? 'truncate';
      const prompt = this.model.prompt(options.instruction);
      const keys = await this.cacheKeys(call, pairs, mode, prompt.instruction);
      const results: (CachedScore | undefined)[] = keys.map((key) => this.cache.get(key));
      const firstOfKey = new Map<string, number>();
      pairs.forEach((_, i) => {
        if (results[i] === undefined && !firstOfKey.has(keys[i])) firstOfKey.set(keys[i], i);
      });
      const todo = [...firstOfKey.values()];
      const encoded = await this.encodeBudgeted(
        call,
        todo.map((i) => pairs[i]),
        mode,
        prompt,
      );
      const tokens = encoded.reduce((n, windows) => n + windows.reduce((m, w) => m + w.inputIds.length, 0), 0);
      options.onTokens?.(tokens);
      if (this.model.session.prefixGraph) markSharedPrefix(encoded.flat());
      const queuedAt = performance.now();
      let queued = { queueMs: 0, inferenceMs: 0, batches: 0 };
      const rows = await this.queue.submit(encoded.flat(), {
        ...options,
        deadline,
        onProgress: pairProgress(options.onProgress, pairs.length, results.filter(Boolean).length),
        onQueueTimings: options.onTimings && (({ queueMs, inferenceMs, batches }) => (queued = { queueMs, inferenceMs, batches })),
      });
      let row = 0;
      todo.forEach((pairIndex, n) => {
        const windows = encoded[n];
        const own = rows.slice(row, row + windows.length);
        row += windows.length;
        // Cut off by the deadline: a chunked document scored in part is not scored.
        if ([...own].some((r) => r === undefined)) return;
        const scored = this.best(own, windows);
        this.cache.set(keys[pairIndex], scored);
        results[pairIndex] = scored;
      });
      if (options.onTimings) {
        const characters = pairs.reduce((n, p) => n + p.query.length + p.document.length, 0);
        options.onTimings({ startedAt, tokenizationMs: queuedAt - startedAt, queuedAt, ...queued, tokens, characters, pairs: pairs.length, cached: pairs.length - todo.length });
      }
      return pairs.map((_, i) => results[i] ?? results[firstOfKey.get(keys[i])!] ?? UNSCORED);
    } catch (err) {
      // The call's tokenization jobs not started yet are dropped.
      call.cancel(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      this.inFlight--;
      if (this.inFlight === 0) this.retired?.();
    }
  }

  /** performance.now() by which a call must answer, from its deadlineMs and the server's maxCallMs; undefined: none. */
  private deadlineOf(deadlineMs: number | undefined): number | undefined {
    const server = this.options.maxCallMs ?? 0;
    const ms = deadlineMs === undefined ? (server > 0 ? server : undefined) : server > 0 ? Math.min(deadlineMs, server) : deadlineMs;
    return ms === undefined ? undefined : performance.now() + ms;
  }

  /**
   * The windows of each pair, tokenized off the event loop in jobs of bounded size. Tokens are
   * counted as jobs come back and each job stops at the call's budget, so a call over
   * maxCallTokens is refused after about a budget's worth of tokenization, however large its text.
   */
  private async encodeBudgeted(call: TokenizerCall, pairs: readonly Pair[], mode: LongDocuments, prompt: PromptOptions): Promise<PairEncoding[][]> {
    const limit = this.options.maxCallTokens;
    const bound = this.model.tokenizers.description.lowerBound;
    if (limit > 0 && mode === 'chunk' && bound !== 'none') {
      // A cheap lower bound first, a slice at a time: hostile text takes ~100 characters per
      // token, and a document of tens of MB would block this thread while it is posted to a worker.
      let least = 0;
      for (let i = 0; i < pairs.length && least <= limit; i++) least += await leastTokensInSlices(pairs[i].document, limit - least, bound);
      if (least > limit) throw new CallTooLargeError(limit, least, pairs.length, pairs.length);
    }
    const out: PairEncoding[][] = new Array(pairs.length);
    let tokens = 0;
    let pairsCounted = 0;
    const jobs = slices(pairs, (p) => p.query.length + p.document.length, JOB_CHARS, JOB_PAIRS).map(async ({ start, items }) => {
      const result = await call.encode({
        pairs: items.map(({ query, document }) => ({ query, document })),
        maxLength: this.model.maxLength,
        mode,
        overlap: this.options.chunkOverlap,
        limit,
        prompt,
      });
      tokens += result.tokens;
      pairsCounted += result.windows.length;
      if (limit > 0 && (result.over || tokens > limit)) throw new CallTooLargeError(limit, tokens, pairsCounted, pairs.length);
      result.windows.forEach((w, k) => (out[start + k] = w.map(requireTokens)));
    });
    await Promise.all(jobs);
    return out;
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

  /** Cache keys hash the texts here, a slice at a time: posting megabytes to a worker copies them on this thread anyway. */
  private async cacheKeys(call: TokenizerCall, pairs: readonly Pair[], mode: LongDocuments, instruction: string | undefined): Promise<string[]> {
    const prompt = instruction === undefined ? '' : `|${textHash(instruction)}`;
    const prefix = `${this.model.id}|${this.model.maxLength}|${mode}|${mode === 'chunk' ? this.options.chunkOverlap : 0}${prompt}`;
    // Calls send one query with many documents: each distinct query is hashed once.
    const queryIndex = new Map<string, number>();
    const texts: string[] = [];
    const refs = pairs.map((p) => {
      let q = queryIndex.get(p.query);
      if (q === undefined) {
        queryIndex.set(p.query, (q = texts.length));
        texts.push(p.query);
      }
      texts.push(p.document);
      return [q, texts.length - 1];
    });
    const hashes = await hashInSlices(texts);
    return refs.map(([q, d]) => `${prefix}|${hashes[q]}|${hashes[d]}`);
  }

  /**
   * Scores in fixed batches of `batchSize` in input order, bypassing the length-sorted queue
   * and the cache, as sentence-transformers' predict(batch_size=N) does. Dynamic int8
   * quantization scales each batch by its own value range, so only the same batch
   * composition reproduces a Python int8 run to the last digits; fp32 scores do not depend on it.
   */
  async scoreInInputOrder(pairs: readonly Pair[], batchSize: number, instruction?: string): Promise<PairScore[]> {
    const scores: PairScore[] = [];
    const call = this.model.tokenizers.call();
    const prompt = this.model.prompt(instruction);
    for (let start = 0; start < pairs.length; start += batchSize) {
      const batch = pairs.slice(start, start + batchSize).map(({ query, document }) => ({ query, document }));
      const { windows } = await call.encode({ pairs: batch, maxLength: this.model.maxLength, mode: 'truncate', overlap: 0, limit: 0, prompt });
      const encoded = windows.map((w) => requireTokens(w[0]));
      if (this.model.session.prefixGraph) markSharedPrefix(encoded);
      const { logits, labels } = await this.model.session.run(encoded);
      encoded.forEach((e, row) => scores.push({ ...this.model.scoreRow(logits.subarray(row * labels, (row + 1) * labels)), truncated: e.truncated, windows: 1 }));
    }
    return scores;
  }

  /** Scores of every document, best first; equal scores keep input order; those a deadline left unscored last, in input order. */
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
 * Tells each pair how many leading ids all pairs of its call share (prompt, instruction, query):
 * the prefix graph runs them once for the call. Ids, not text: they are what each pair's
 * sequence starts with as the tokenizer gave it, whatever merged across the template's seams.
 */
function markSharedPrefix(pairs: EncodedPair[]): void {
  if (pairs.length < 2) return;
  const first = pairs[0].inputIds;
  let shared = first.length;
  for (const pair of pairs) {
    shared = Math.min(shared, pair.inputIds.length);
    for (let i = 0; i < shared; i++) {
      if (pair.inputIds[i] !== first[i]) {
        shared = i;
        break;
      }
    }
  }
  for (const pair of pairs) pair.prefixLength = shared;
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

export function rankByScore<T extends { score: number; index: number; scored?: false }>(results: T[]): T[] {
  const scored = results.filter((r) => r.scored !== false).sort((a, b) => b.score - a.score || a.index - b.index);
  return [...scored, ...results.filter((r) => r.scored === false)];
}
