/**
 * The server's handle on the feedback database: opened on first use (a server whose data
 * directory is read-only still reranks; only feedback calls fail, with the reason), and
 * keeping the rerank log within its retention limits.
 */
import { FeedbackStore, rerankCallBytes } from './feedback-store.js';
import { log } from '../log.js';
import { StoreProbe } from './probe.js';

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
  private openError: Error | undefined;
  private logsSincePrune = 0;
  /** The log's text bytes as last measured plus what this process added since; other processes may add more. */
  private logBytes = 0;
  private probe: StoreProbe | undefined;

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

  /** The open store; throws the reason it cannot be opened, every time it is asked. */
  open(): FeedbackStore {
    if (this.store) return this.store;
    if (this.openError) throw this.openError;
    try {
      this.store = FeedbackStore.open(this.path);
      this.store.pruneRerankLog(this.limits);
      this.evictBytes(this.store);
      return this.store;
    } catch (err) {
      const reason = (err as Error).message;
      this.openError = new Error(reason.includes(this.path) ? `feedback database: ${reason}` : `feedback database ${this.path} cannot be opened: ${reason}`);
      log(`warning: ${this.openError.message}`);
      throw this.openError;
    }
  }

  /** Logs a rerank call for later labeling; a failure costs only the rerank_id, never the results. */
  logRerank(call: Parameters<FeedbackStore['logRerank']>[0]): string | undefined {
    if (!this.rerankLogEnabled) return undefined;
    const bytes = rerankCallBytes(call);
    if (bytes > this.maxBytes) {
      log(`rerank call of ${(bytes / 1024 / 1024).toFixed(1)} MiB of text not logged (no rerank_id): over --rerank-log-max-mb ${this.maxBytes / 1024 / 1024}`);
      return undefined;
    }
    try {
      const store = this.open();
      const id = store.logRerank(call);
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

  /** Whether the database answers, checked without blocking the event loop (readiness probes): undefined when it does, else why not. */
  reachable(): Promise<string | undefined> {
    if (this.openError) return Promise.resolve(this.openError.message);
    this.probe ??= new StoreProbe(this.path);
    return this.probe.check();
  }

  close(): void {
    this.store?.close();
    this.store = undefined;
  }
}
