/**
 * The one interface every feedback store implements: a SQLite file (the default, one user or one
 * host) or a PostgreSQL database (several server replicas sharing labels). Asynchronous because
 * PostgreSQL is; SQLite answers at once. Both give the same answers: same validation, same
 * repeat counting, same rerank-log limits, and the training set is selected by the same code.
 */
import { existsSync, statSync } from 'node:fs';
import { isPostgresUrl } from './db-path.js';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { ExportOptions, TrainingRow } from './export.js';
import { explainDbError, FeedbackStore, throwIfDamaged, type Eviction, type FeedbackInput, type FeedbackStats, type RecordResult, type RerankCall } from './feedback-store.js';
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
  fileChange(): string | null;
  /** A cheap round trip to a database server, for readiness probes (PostgreSQL: SELECT 1); absent where there is no server. */
  ping?(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  now?: () => Date;
  /** SQLite: run the integrity check on open in a worker thread, off the event loop (the server does). */
  checkOffThread?: boolean;
}

export { isPostgresUrl, maskUrl } from './db-path.js';

/** Opens the store `location` names, creating (SQLite) or migrating (both) as needed. */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<FeedbackBackend> {
  if (isPostgresUrl(location)) {
    const { PostgresStore } = await import('./postgres-store.js');
    return PostgresStore.open(location, options);
  }
  if (options.checkOffThread && existsSync(location) && statSync(location).isFile()) {
    try {
      throwIfDamaged(location, await quickCheckInWorker(location));
    } catch (err) {
      throw explainDbError(err, location);
    }
    return new SqliteBackend(FeedbackStore.open(location, { ...options, quickCheck: false }));
  }
  return new SqliteBackend(FeedbackStore.open(location, options));
}

/**
 * The worker's source: quick_check on its own read-only connection. It reads every page (about
 * 1 s for 90 MB on a loaded machine, scripts/feedback-store-bench.ts), which the server's event
 * loop must not wait on. Inline rather than a file, so it runs the same from dist/ and under tsx.
 */
const QUICK_CHECK_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let result;
try {
  const db = new Database(workerData.path, { readonly: true, fileMustExist: true, timeout: 10000 });
  try {
    const rows = db.pragma('quick_check').map((r) => r.quick_check);
    result = { problems: rows.length === 1 && rows[0] === 'ok' ? [] : rows };
  } finally {
    db.close();
  }
} catch (err) {
  result = { error: err.message, code: err.code };
}
parentPort.postMessage(result);
`;

/** quick_check's findings from a worker thread; SQLite's own errors (not a database...) are rethrown with their code. */
function quickCheckInWorker(path: string): Promise<string[]> {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  return new Promise((resolve, reject) => {
    const worker = new Worker(QUICK_CHECK_WORKER, { eval: true, workerData: { path, driver } });
    worker.once('message', (result: { problems: string[] } | { error: string; code?: string }) => {
      if ('problems' in result) resolve(result.problems);
      else reject(Object.assign(new Error(result.error), { code: result.code }));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`the integrity check of ${path} stopped (exit ${code})`)));
  });
}

/** The synchronous SQLite store behind the common interface. */
export class SqliteBackend implements FeedbackBackend {
  readonly kind = 'sqlite';

  constructor(readonly store: FeedbackStore) {}

  get location(): string {
    return this.store.path;
  }

  async record(items: FeedbackInput[]) {
    return this.store.record(items);
  }
  async logRerank(call: RerankCall) {
    return this.store.logRerank(call);
  }
  async labelRerank(rerankId: string, relevant: (number | string)[], irrelevant: (number | string)[], meta: LabelMeta = {}) {
    return this.store.labelRerank(rerankId, relevant, irrelevant, meta);
  }
  async pruneRerankLog(limits: { maxCalls: number; maxDays: number }) {
    return this.store.pruneRerankLog(limits);
  }
  async evictRerankLogBytes(maxBytes: number, targetBytes?: number) {
    return this.store.evictRerankLogBytes(maxBytes, targetBytes);
  }
  async rerankLogBytes() {
    return this.store.rerankLogBytes();
  }
  async purge(before: Date, what: { log: boolean; feedback: boolean }) {
    return this.store.purge(before, what);
  }
  async exportRows(options: ExportOptions) {
    return this.store.exportRows(options);
  }
  async trainingSet(options: TrainingSetOptions) {
    return this.store.trainingSet(options);
  }
  async stats() {
    return this.store.stats();
  }
  fileChange() {
    return this.store.fileChange();
  }
  async close() {
    this.store.close();
  }
}
