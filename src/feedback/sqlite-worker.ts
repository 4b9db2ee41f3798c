/**
 * The worker thread that owns the server's SQLite connection (store.ts, SqliteBackend). Every
 * statement is synchronous and may wait: on another process's lock for up to the busy timeout,
 * on fsync, on quick_check reading every page at open. Here that waiting holds only this thread.
 * Requests come one at a time, in order, each with its id, the caller's clock and how long it
 * may still wait for a lock.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { explainDbError, FeedbackStore } from './feedback-store.js';

export interface StoreRequest {
  id: number;
  method: string;
  args: unknown[];
  /** The caller's clock at the request, ISO 8601: timestamps and pruning use it. */
  now: string;
  /** Epoch ms after which the request no longer waits for a lock. */
  waitUntil: number;
}

export type StoreReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { message: string; name: string; code?: string } };

const { path } = workerData as { path: string };
let now = new Date();
let store: FeedbackStore | undefined;

function run(request: StoreRequest): unknown {
  now = new Date(request.now);
  if (request.method === 'open') {
    store = FeedbackStore.open(path, { now: () => now });
    return null;
  }
  if (!store) throw new Error(`feedback database ${path} is not open`);
  if (request.method === 'close') {
    const closing = store;
    store = undefined;
    closing.close();
    return null;
  }
  store.setBusyTimeout(request.waitUntil - Date.now());
  const method = (store as unknown as Record<string, (...args: unknown[]) => unknown>)[request.method];
  if (typeof method !== 'function') throw new Error(`unknown store method ${request.method}`);
  return method.apply(store, request.args);
}

parentPort!.on('message', (request: StoreRequest) => {
  let reply: StoreReply;
  try {
    // Waited too long in the queue already (behind a call that waited for a lock): fail like SQLite would.
    if (request.method !== 'open' && request.method !== 'close' && Date.now() > request.waitUntil) throw explainDbError(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }), path);
    reply = { id: request.id, ok: true, result: run(request) };
  } catch (err) {
    const e = err as Error & { code?: string };
    reply = { id: request.id, ok: false, error: { message: e.message, name: e.constructor?.name ?? 'Error', code: e.code } };
  }
  parentPort!.postMessage(reply);
});
