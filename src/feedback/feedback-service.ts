/**
 * The server's handle on the feedback store: opened on first use (a server whose data
 * directory is read-only, or whose PostgreSQL is down, still reranks; only feedback calls fail,
 * with the reason, until the store can be opened), reopened when a SQLite file is deleted or
 * replaced under it, and keeping the rerank log within its retention limits.
 */
import { existsSync } from 'node:fs';
import { FeedbackError, rerankCallBytes, type FeedbackInput, type FeedbackStats, type RecordResult, type RerankCall } from './feedback-store.js';
import { isPostgresUrl, maskUrl, openStore, prestartStore, type FeedbackBackend, type LabelMeta } from './store.js';
import { log } from '../log.js';
import { StoreProbe, probeSqliteFile } from './probe.js';
import { countStoreError } from '../observability/index.js';

export interface RerankLogLimits {
  /** Newest rerank calls kept for labeling by rerank_id; 0 turns the log off. */
  maxCalls: number;
  maxDays: number;
  /** Bytes of query and candidate text kept, oldest calls evicted first; 0 turns the log off. */
  maxBytes?: number;
}

const PRUNE_EVERY = 100;
/**
 * After the rerank log fails to write, rerank calls skip logging for this long: a database
 * that is down (a connect timeout is 5 s) must not slow every rerank call.
 */
const LOG_RETRY_MS = 10_000;
/**
 * A rerank call waits at most this long for its rerank_id: the store's worker may be waiting
 * for a lock another process holds, and the results must not wait with it.
 */
const LOG_WAIT_MS = 1000;
/**
 * An eviction goes down to this share of the byte cap, so a full log does not rescan and
 * evict on every call.
 */
const EVICT_TO = 0.9;

export class FeedbackService {
  private store: FeedbackBackend | undefined;
  /** The open in progress, shared by the calls that arrive meanwhile. */
  private opening: Promise<FeedbackBackend> | undefined;
  private logsSincePrune = 0;
  /** The log's text bytes as last measured plus what this process added since; other processes may add more. */
  private logBytes = 0;
  private logPausedUntil = 0;
  /** The file path or PostgreSQL URL (password masked) that messages name. */
  readonly location: string;
  private probe: StoreProbe | undefined;

  constructor(
    /** A SQLite file path or a postgres:// URL. */
    readonly path: string,
    readonly limits: RerankLogLimits,
  ) {
    this.location = isPostgresUrl(path) ? maskUrl(path) : path;
    prestartStore(path);
  }

  /** sqlite or postgres, as store-error metrics label it. */
  get backend(): 'sqlite' | 'postgres' {
    return isPostgresUrl(this.path) ? 'postgres' : 'sqlite';
  }

  /** The rerank log's text bytes as this process last measured them plus what it added since. */
  get rerankLogBytes(): number {
    return this.logBytes;
  }

  get rerankLogEnabled(): boolean {
    return this.limits.maxCalls > 0 && this.limits.maxDays > 0 && this.maxBytes > 0;
  }

  private get maxBytes(): number {
    return this.limits.maxBytes ?? Infinity;
  }

  /**
   * The open store. A failure is thrown, and tried again on the next call: a directory made
   * writable, a disk freed or a database server back up is picked up without a restart.
   */
  open(): Promise<FeedbackBackend> {
    if (this.store) return Promise.resolve(this.store);
    this.opening ??= this.openNow().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async openNow(): Promise<FeedbackBackend> {
    let store: FeedbackBackend | undefined;
    try {
      store = await openStore(this.path);
      await store.pruneRerankLog(this.limits);
      await this.evictBytes(store);
      this.store = store;
      return store;
    } catch (err) {
      await store?.close().catch(() => undefined);
      const reason = (err as Error).message;
      const error = new Error(reason.includes(this.location) || /^PostgreSQL /.test(reason) ? `feedback database: ${reason}` : `feedback database ${this.location} cannot be opened: ${reason}`);
      log(`warning: ${error.message}`);
      countStoreError(this.backend, 'open');
      throw error;
    }
  }

  /**
   * The store, reopened first if its file is no longer the one at the path (deleted, replaced):
   * otherwise writes would go to a file nobody can reach again.
   */
  private async current(): Promise<FeedbackBackend> {
    const store = await this.open();
    const change = await store.fileChange();
    if (change === null) return store;
    return this.reopen(change);
  }

  private async reopen(change: string): Promise<FeedbackBackend> {
    const old = this.store;
    this.store = undefined;
    await old?.close();
    const fresh = !existsSync(this.path);
    log(`warning: feedback database ${this.path} ${change} while open; reopening it${fresh ? ' as a new, empty database (what the old file held is gone with it)' : ''}`);
    return this.open();
  }

  /**
   * Runs one write and answers only once the file it went to is still the one at the path;
   * if the file was swapped during the write, the write is made again in the file now there.
   */
  private async write<T>(work: (store: FeedbackBackend) => Promise<T>): Promise<T> {
    const store = await this.current();
    const result = await work(store);
    const change = await store.fileChange();
    if (change === null) return result;
    const again = await work(await this.reopen(change));
    const second = this.store ? await this.store.fileChange() : 'could not be reopened';
    if (second !== null) throw new Error(`feedback not stored: ${this.path} ${second} twice during one write; stop whatever replaces it, or pass --db (RERANK_FEEDBACK_DB) another path`);
    return again;
  }

  async record(items: FeedbackInput[]): Promise<RecordResult> {
    return this.counted('record', this.write((store) => store.record(items)));
  }

  async labelRerank(rerankId: string, relevant: (number | string)[], irrelevant: (number | string)[], meta: LabelMeta = {}): Promise<RecordResult> {
    return this.counted('label_rerank', this.write((store) => store.labelRerank(rerankId, relevant, irrelevant, meta)));
  }

  /** Counts a failed write by backend; a refusal of what the caller sent (FeedbackError) is not the store's error, nor a failed open (counted there). */
  private counted<T>(operation: string, write: Promise<T>): Promise<T> {
    return write.catch((err: unknown) => {
      if (!(err instanceof FeedbackError) && this.store) countStoreError(this.backend, operation);
      throw err;
    });
  }

  async stats(): Promise<FeedbackStats> {
    return (await this.current()).stats();
  }

  /** Logs a rerank call for later labeling; a failure costs only the rerank_id, never the results. */
  async logRerank(call: RerankCall): Promise<string | undefined> {
    if (!this.rerankLogEnabled || Date.now() < this.logPausedUntil) return undefined;
    const bytes = rerankCallBytes(call);
    // A call over half the cap would evict most of the calls others may still label, and its write
    // holds the store for a second or more (95 MB: every small call's rerank_id waited ~1 s behind it).
    if (bytes > this.maxBytes / 2) {
      log(`rerank call of ${(bytes / 1024 / 1024).toFixed(1)} MiB of text not logged (no rerank_id): over half of --rerank-log-max-mb ${this.maxBytes / 1024 / 1024}; raise it to label calls this large`);
      return undefined;
    }
    try {
      // The first call waits for the open (the integrity check included), as the feedback calls do.
      await this.open();
      const id = await withinDeadline(this.write((store) => store.logRerank(call)), LOG_WAIT_MS, () => `feedback database ${this.location} did not answer within ${LOG_WAIT_MS / 1000} s (a lock held by another process, or a slow disk)`);
      const store = await this.open();
      this.logBytes += bytes;
      if (++this.logsSincePrune >= PRUNE_EVERY) {
        this.logsSincePrune = 0;
        await store.pruneRerankLog(this.limits);
        await this.evictBytes(store);
      } else if (this.logBytes > this.maxBytes) {
        await this.evictBytes(store);
      }
      return id;
    } catch (err) {
      const message = (err as Error).message;
      // Only an unavailable store pauses the log; a call it refuses (bad text) does not.
      const unavailable = !this.store || /cannot be reached|login refused|does not resolve|did not answer|is locked/.test(message);
      if (unavailable) this.logPausedUntil = Date.now() + LOG_RETRY_MS;
      if (this.store) countStoreError(this.backend, 'log_rerank');
      log(`warning: rerank call not logged (no rerank_id${unavailable ? `; logging tried again in ${LOG_RETRY_MS / 1000} s` : ''}): ${message}`);
      return undefined;
    }
  }

  /** Measures the log and, when it is over the byte cap, evicts the oldest calls. */
  private async evictBytes(store: FeedbackBackend): Promise<void> {
    if (!Number.isFinite(this.maxBytes)) return;
    const eviction = await store.evictRerankLogBytes(this.maxBytes, Math.floor(this.maxBytes * EVICT_TO));
    this.logBytes = eviction.remaining;
    if (eviction.calls > 0) {
      log(`rerank log over --rerank-log-max-mb: removed the ${eviction.calls} oldest call(s), ${(eviction.bytes / 1024 / 1024).toFixed(1)} MiB of text`);
    }
  }

  /**
   * Whether the store answers, for readiness probes: undefined when it does, else why not, in
   * one line. Never blocks the event loop (a SQLite file is checked in a worker thread, since
   * opening and reading it are synchronous and can wait on another process's lock) and answers
   * within a deadline.
   */
  reachable(): Promise<string | undefined> {
    this.probe ??= isPostgresUrl(this.path)
      ? new StoreProbe(this.location, async () => {
          const store = await this.open();
          await store.ping?.();
        })
      : new StoreProbe(this.location, (deadline) => probeSqliteFile(this.path, deadline));
    return this.probe.check();
  }

  async close(): Promise<void> {
    const store = this.store;
    this.store = undefined;
    await store?.close();
  }
}

/** `work`'s result, or a rejection with `why()` once `ms` have passed; a late failure of `work` is then ignored. */
function withinDeadline<T>(work: Promise<T>, ms: number, why: () => string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      work.catch(() => undefined);
      reject(new Error(why()));
    }, ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
