/**
 * The one interface every feedback store implements: a SQLite file (the default, one user or one
 * host) or a PostgreSQL database (several server replicas sharing labels). Asynchronous because
 * PostgreSQL is, and because SQLite runs in a worker thread. Both give the same answers: same validation, same
 * repeat counting, same rerank-log limits, and the training set is selected by the same code.
 */
import { startModuleWorker } from '../module-worker.js';
import type { Worker } from 'node:worker_threads';
import { isPostgresUrl } from './db-path.js';
import type { ExportOptions, TrainingRow } from './export.js';
import { FeedbackError, type Eviction, type FeedbackInput, type FeedbackStats, type RecordResult, type RerankCall } from './feedback-store.js';
import type { StoreReply, StoreRequest } from './sqlite-worker.js';
import type { TrainingSet, TrainingSetOptions } from './training-set.js';

export interface LabelMeta {
  source?: string;
  sessionId?: string;
}

export interface FeedbackBackend {
  /** The file path, or the PostgreSQL URL with its password masked: what error lines name. */
  readonly location: string;
  readonly kind: 'sqlite' | 'postgres';
  record(items: FeedbackInput[]): Promise<RecordResult>;
  logRerank(call: RerankCall): Promise<string>;
  labelRerank(rerankId: string, relevant: (number | string)[], irrelevant: (number | string)[], meta?: LabelMeta): Promise<RecordResult>;
  pruneRerankLog(limits: { maxCalls: number; maxDays: number }): Promise<number>;
  evictRerankLogBytes(maxBytes: number, targetBytes?: number): Promise<Eviction>;
  rerankLogBytes(): Promise<number>;
  purge(before: Date, what: { log: boolean; feedback: boolean }): Promise<{ calls: number; events: number }>;
  exportRows(options: ExportOptions): Promise<TrainingRow[]>;
  trainingSet(options: TrainingSetOptions): Promise<TrainingSet>;
  stats(): Promise<FeedbackStats>;
  /**
   * Null while writes reach the store named by `location`; otherwise what happened to it (a
   * SQLite file deleted or replaced under the open handle). PostgreSQL: always null.
   */
  fileChange(): Promise<string | null>;
  /** A cheap round trip to a database server, for readiness probes (PostgreSQL: SELECT 1); absent where there is no server. */
  ping?(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  now?: () => Date;
}

export { isPostgresUrl, maskUrl } from './db-path.js';

/** Opens the store `location` names, creating (SQLite) or migrating (both) as needed. */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<FeedbackBackend> {
  if (isPostgresUrl(location)) {
    const { PostgresStore } = await import('./postgres-store.js');
    return PostgresStore.open(location, options);
  }
  return SqliteBackend.open(location, options);
}

const startWorker = (workerData: unknown): Worker => startModuleWorker(import.meta.url, 'sqlite-worker', workerData);

/**
 * Workers started ahead of the first open, by path: starting one (a thread, its modules,
 * better-sqlite3) takes a few hundred ms on a loaded machine, which the first feedback or
 * rerank call would otherwise wait for, and a shutdown behind it.
 */
const spareWorkers = new Map<string, Worker>();

/** Starts the worker a later openStore(location) of a SQLite file will use; nothing for PostgreSQL. */
export function prestartStore(location: string): void {
  if (isPostgresUrl(location) || spareWorkers.has(location)) return;
  const worker = startWorker({ path: location });
  worker.unref();
  // A spare that fails to start is simply not used: the open starts another and reports its error.
  worker.on('error', () => spareWorkers.delete(location));
  spareWorkers.set(location, worker);
}

function takeWorker(location: string): Worker {
  const spare = spareWorkers.get(location);
  spareWorkers.delete(location);
  return spare ?? startWorker({ path: location });
}

/** How long one call waits, in all, for another process's write lock (queued behind other calls included). */
const LOCK_WAIT_MS = 10_000;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * The SQLite store behind the common interface, run in a worker thread of its own
 * (sqlite-worker.ts) that owns the one connection: no statement, lock wait or fsync ever
 * holds the event loop, so a lock another process keeps delays the feedback calls only.
 */
export class SqliteBackend implements FeedbackBackend {
  readonly kind = 'sqlite';
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private failed: Error | undefined;

  private constructor(
    readonly location: string,
    private readonly worker: Worker,
    private readonly now: () => Date,
  ) {
    worker.on('message', (reply: StoreReply) => {
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      // An idle worker does not keep the process alive; one with a call in flight does.
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) call.resolve(reply.result);
      else call.reject(reply.error.name === 'FeedbackError' ? new FeedbackError(reply.error.message) : Object.assign(new Error(reply.error.message), { code: reply.error.code }));
    });
    const fail = (err: Error) => {
      this.failed ??= new Error(`feedback database ${location}: its worker thread stopped (${err.message.replace(/\s+/g, ' ')}); restart rerank-mcp`);
      for (const call of this.pending.values()) call.reject(this.failed);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit ${code}`)));
    worker.unref();
  }

  static async open(location: string, options: OpenStoreOptions = {}): Promise<SqliteBackend> {
    const backend = new SqliteBackend(location, takeWorker(location), options.now ?? (() => new Date()));
    try {
      await backend.call('open', []);
    } catch (err) {
      await backend.worker.terminate();
      throw err;
    }
    return backend;
  }

  private call<T>(method: string, args: unknown[]): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    const id = ++this.nextId;
    const request: StoreRequest = { id, method, args, now: this.now().toISOString(), waitUntil: Date.now() + LOCK_WAIT_MS };
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.ref();
      this.worker.postMessage(request);
    });
  }

  record(items: FeedbackInput[]) {
    return this.call<RecordResult>('record', [items]);
  }
  logRerank(call: RerankCall) {
    return this.call<string>('logRerank', [call]);
  }
  labelRerank(rerankId: string, relevant: (number | string)[], irrelevant: (number | string)[], meta: LabelMeta = {}) {
    return this.call<RecordResult>('labelRerank', [rerankId, relevant, irrelevant, meta]);
  }
  pruneRerankLog(limits: { maxCalls: number; maxDays: number }) {
    return this.call<number>('pruneRerankLog', [limits]);
  }
  evictRerankLogBytes(maxBytes: number, targetBytes?: number) {
    return this.call<Eviction>('evictRerankLogBytes', [maxBytes, targetBytes]);
  }
  rerankLogBytes() {
    return this.call<number>('rerankLogBytes', []);
  }
  purge(before: Date, what: { log: boolean; feedback: boolean }) {
    return this.call<{ calls: number; events: number }>('purge', [before, what]);
  }
  exportRows(options: ExportOptions) {
    return this.call<TrainingRow[]>('exportRows', [options]);
  }
  trainingSet(options: TrainingSetOptions) {
    return this.call<TrainingSet>('trainingSet', [options]);
  }
  stats() {
    return this.call<FeedbackStats>('stats', []);
  }
  fileChange() {
    return this.call<string | null>('fileChange', []);
  }
  async close() {
    if (!this.failed) await this.call('close', []).catch(() => undefined);
    await this.worker.terminate();
  }
}
