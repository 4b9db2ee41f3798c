/**
 * The server's handle on the feedback database: opened on first use (a server whose data
 * directory is read-only still reranks; only feedback calls fail, with the reason), and
 * keeping the rerank log within its retention limits.
 */
import { FeedbackStore } from './feedback-store.js';
import { log } from '../log.js';

export interface RerankLogLimits {
  /** Newest rerank calls kept for labeling by rerank_id; 0 turns the log off. */
  maxCalls: number;
  maxDays: number;
}

const PRUNE_EVERY = 100;

export class FeedbackService {
  private store: FeedbackStore | undefined;
  private openError: Error | undefined;
  private logsSincePrune = 0;

  constructor(
    readonly path: string,
    readonly limits: RerankLogLimits,
  ) {}

  get rerankLogEnabled(): boolean {
    return this.limits.maxCalls > 0 && this.limits.maxDays > 0;
  }

  /** The open store; throws the reason it cannot be opened, every time it is asked. */
  open(): FeedbackStore {
    if (this.store) return this.store;
    if (this.openError) throw this.openError;
    try {
      this.store = FeedbackStore.open(this.path);
      this.store.pruneRerankLog(this.limits);
      return this.store;
    } catch (err) {
      this.openError = new Error(`feedback database ${this.path} cannot be opened: ${(err as Error).message}`);
      log(`warning: ${this.openError.message}`);
      throw this.openError;
    }
  }

  /** Logs a rerank call for later labeling; a failure costs only the rerank_id, never the results. */
  logRerank(call: Parameters<FeedbackStore['logRerank']>[0]): string | undefined {
    if (!this.rerankLogEnabled) return undefined;
    try {
      const store = this.open();
      const id = store.logRerank(call);
      if (++this.logsSincePrune >= PRUNE_EVERY) {
        this.logsSincePrune = 0;
        store.pruneRerankLog(this.limits);
      }
      return id;
    } catch (err) {
      log(`warning: rerank call not logged: ${(err as Error).message}`);
      return undefined;
    }
  }

  close(): void {
    this.store?.close();
    this.store = undefined;
  }
}
