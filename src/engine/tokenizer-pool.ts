/**
 * Tokenizer worker threads owned by the engine: tokenizer.json is parsed, texts normalized,
 * tokenized and hashed there, never on the event loop, so a call with megabytes of hostile
 * text delays no other client. Each call's jobs (bounded slices of its pairs) wait in their
 * own queue and the calls take turns at free workers, so a small call waits for at most one
 * job of a large one per worker, not for all of it.
 */
import { startModuleWorker } from '../module-worker.js';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { EncodeJob, EncodeResult, TokenizerCall, TokenizerDescription, TokenizerService } from '../tokenizer/tokenizer-service.js';

interface Task {
  kind: 'encode' | 'hash';
  payload: unknown;
  resolve: (value: never) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: { task: Task } | null;
}

// Two at least, so that one long job (a whole document tokenized for chunking) never holds
// every worker; at most four: ONNX Runtime already uses every core for inference.
export function defaultPoolSize(): number {
  return Math.max(2, Math.min(4, Math.floor(availableParallelism() / 2)));
}

const startWorker = (workerData: unknown): Worker => startModuleWorker(import.meta.url, 'tokenizer-worker', workerData);

export class TokenizerPool implements TokenizerService {
  /** Queued tasks per call, calls in turn order (Map keeps insertion order: a served call goes to the back). */
  private readonly queues = new Map<object, Task[]>();
  private closed = false;
  private nextId = 0;
  private readonly running = new Map<number, Task>();

  private constructor(
    private readonly slots: Slot[],
    readonly description: TokenizerDescription,
  ) {
    for (const slot of slots) {
      slot.worker.on('message', (msg: { id: number; ok: boolean; result?: unknown; error?: string }) => {
        const task = this.running.get(msg.id);
        if (!task) return;
        this.running.delete(msg.id);
        slot.busy = null;
        // An idle worker does not keep the process alive; one with a job does.
        slot.worker.unref();
        if (msg.ok) task.resolve(msg.result as never);
        else task.reject(new Error(msg.error));
        this.dispatch();
      });
      slot.worker.on('error', (err) => {
        const running = slot.busy?.task;
        slot.busy = null;
        running?.reject(new Error(`tokenizer worker failed: ${err.message}`));
      });
      slot.worker.unref();
    }
  }

  get parallelism(): number {
    return this.slots.length;
  }

  /** Starts `size` workers that each read the tokenizer files; rejects with the first one's one-line error. */
  static async open(tokenizerPath: string, tokenizerConfigPath: string | null, size = defaultPoolSize()): Promise<TokenizerPool> {
    const workers = Array.from({ length: size }, () => startWorker({ tokenizerPath, tokenizerConfigPath }));
    try {
      const descriptions = await Promise.all(
        workers.map(
          (worker) =>
            new Promise<TokenizerDescription>((resolve, reject) => {
              worker.once('message', (msg: { type: string; description?: TokenizerDescription; error?: string }) =>
                msg.type === 'ready' ? resolve(msg.description!) : reject(new Error(msg.error)),
              );
              worker.once('error', (err) => reject(new Error(`${tokenizerPath}: tokenizer worker failed: ${err.message}`)));
              worker.once('exit', (code) => reject(new Error(`${tokenizerPath}: tokenizer worker exited (code ${code}) while loading`)));
            }),
        ),
      );
      for (const w of workers) {
        w.removeAllListeners('exit');
        w.removeAllListeners('error');
      }
      return new TokenizerPool(
        workers.map((worker) => ({ worker, busy: null })),
        descriptions[0],
      );
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
  }

  call(): TokenizerCall {
    const key = {};
    const submit = <T>(kind: Task['kind'], payload: unknown): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        if (this.closed) return reject(new Error('the tokenizer was closed (the model was replaced)'));
        let queue = this.queues.get(key);
        if (!queue) this.queues.set(key, (queue = []));
        queue.push({ kind, payload, resolve: resolve as (v: never) => void, reject });
        this.dispatch();
      });
    return {
      encode: (job: EncodeJob) => submit<EncodeResult>('encode', job),
      hash: (texts: string[]) => submit<string[]>('hash', texts),
      cancel: (reason: Error) => {
        const queue = this.queues.get(key);
        this.queues.delete(key);
        for (const task of queue ?? []) task.reject(reason);
      },
    };
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const next = this.queues.entries().next();
      if (next.done) return;
      const [key, queue] = next.value;
      const task = queue.shift()!;
      // The call goes to the back of the turn order, or leaves it when it has nothing left.
      this.queues.delete(key);
      if (queue.length > 0) this.queues.set(key, queue);
      const id = this.nextId++;
      this.running.set(id, task);
      slot.busy = { task };
      slot.worker.ref();
      slot.worker.postMessage({ id, kind: task.kind, payload: task.payload });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const reason = new Error('the tokenizer was closed (the model was replaced)');
    for (const queue of this.queues.values()) for (const task of queue) task.reject(reason);
    this.queues.clear();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    for (const task of this.running.values()) task.reject(reason);
    this.running.clear();
  }
}
