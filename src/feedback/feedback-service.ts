/**
 * The server's handle on the feedback database: opened on first use (a server whose data
 * directory is read-only still reranks; only feedback calls fail, with the reason, until it
 * can be opened), reopened when its file is deleted or replaced under it, and keeping the
 * rerank log within its retention limits.
 */
import { existsSync } from 'node:fs';
import { FeedbackStore, rerankCallBytes, type FeedbackInput, type FeedbackStats, type RecordResult, type RerankCall } from './feedback-store.js';
import { log } from '../log.js';

export interface RerankLogLimits {
  /** Newest rerank calls kept for labeling by rerank_id; 0 turns the log off. */
  maxCalls: number;
  maxDays: number;
  /** Bytes of query and candidate text kept, oldest calls evicted first; 0 turns the log off. */
  maxBytes?: number;
}

const PRUNE_EVERY = 100;
/**
 * An eviction goes down to this share of the byte cap, so a full log does not rescan and
 * evict on every call.
 */
const EVICT_TO = 0.9;

export class FeedbackService {
  private store: FeedbackStore | undefined;
  private logsSincePrune = 0;
  /** The log's text bytes as last measured plus what this process added since; other processes may add more. */
  private logBytes = 0;

  constructor(
    readonly path: string,
    readonly limits: RerankLogLimits,
  ) {}

  get rerankLogEnabled(): boolean {
    return this.limits.maxCalls > 0 && this.limits.maxDays > 0 && this.maxBytes > 0;
  }

  private get maxBytes(): number {
    return this.limits.maxBytes ?? Infinity;
  }

  /**
   * The open store. A failure is thrown, and tried again on the next call: a directory made
   * writable or a disk freed is picked up without a restart.
   */
  open(): FeedbackStore {
    if (this.store) return this.store;
    try {
      this.store = FeedbackStore.open(this.path);
      this.store.pruneRerankLog(this.limits);
      this.evictBytes(this.store);
      return this.store;
    } catch (err) {
      this.store?.close();
      this.store = undefined;
      const reason = (err as Error).message;
      const error = new Error(reason.includes(this.path) ? `feedback database: ${reason}` : `feedback database ${this.path} cannot be opened: ${reason}`);
      log(`warning: ${error.message}`);
      throw error;
    }
  }

  /**
   * The store, reopened first if its file is no longer the one at the path (deleted, replaced):
   * otherwise writes would go to a file nobody can reach again.
   */
  private current(): FeedbackStore {
    const store = this.open();
    const change = store.fileChange();
    if (change === null) return store;
    return this.reopen(change);
  }

  private reopen(change: string): FeedbackStore {
    this.store?.close();
    this.store = undefined;
    const fresh = !existsSync(this.path);
    log(`warning: feedback database ${this.path} ${change} while open; reopening it${fresh ? ' as a new, empty database (what the old file held is gone with it)' : ''}`);
    return this.open();
  }

  /**
   * Runs one write and answers only once the file it went to is still the one at the path;
   * if the file was swapped during the write, the write is made again in the file now there.
   */
  private write<T>(work: (store: FeedbackStore) => T): T {
    const store = this.current();
    const result = work(store);
    const change = store.fileChange();
    if (change === null) return result;
    const again = work(this.reopen(change));
    const second = this.store?.fileChange() ?? 'could not be reopened';
    if (second !== null) throw new Error(`feedback not stored: ${this.path} ${second} twice during one write; stop whatever replaces it, or pass --db (RERANK_FEEDBACK_DB) another path`);
    return again;
  }

  async record(items: FeedbackInput[]): Promise<RecordResult> {
    return this.write((store) => store.record(items));
  }

  async labelRerank(rerankId: string, relevant: (number | string)[], irrelevant: (number | string)[], meta: { source?: string; sessionId?: string } = {}): Promise<RecordResult> {
    return this.write((store) => store.labelRerank(rerankId, relevant, irrelevant, meta));
  }

  async stats(): Promise<FeedbackStats> {
    return this.current().stats();
  }

  /** Logs a rerank call for later labeling; a failure costs only the rerank_id, never the results. */
  async logRerank(call: RerankCall): Promise<string | undefined> {
    if (!this.rerankLogEnabled) return undefined;
    const bytes = rerankCallBytes(call);
    if (bytes > this.maxBytes) {
      log(`rerank call of ${(bytes / 1024 / 1024).toFixed(1)} MiB of text not logged (no rerank_id): over --rerank-log-max-mb ${this.maxBytes / 1024 / 1024}`);
      return undefined;
    }
    try {
      const id = this.write((store) => store.logRerank(call));
      const store = this.open();
      this.logBytes += bytes;
      if (++this.logsSincePrune >= PRUNE_EVERY) {
        this.logsSincePrune = 0;
        store.pruneRerankLog(this.limits);
        this.evictBytes(store);
      } else if (this.logBytes > this.maxBytes) {
        this.evictBytes(store);
      }
      return id;
    } catch (err) {
      log(`warning: rerank call not logged: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Measures the log and, when it is over the byte cap, evicts the oldest calls. */
  private evictBytes(store: FeedbackStore): void {
    if (!Number.isFinite(this.maxBytes)) return;
    const eviction = store.evictRerankLogBytes(this.maxBytes, Math.floor(this.maxBytes * EVICT_TO));
    this.logBytes = eviction.remaining;
    if (eviction.calls > 0) {
      log(`rerank log over --rerank-log-max-mb: removed the ${eviction.calls} oldest call(s), ${(eviction.bytes / 1024 / 1024).toFixed(1)} MiB of text`);
    }
  }

  close(): void {
    this.store?.close();
    this.store = undefined;
  }
}
