/**
 * Is the feedback store reachable? Asked by readiness probes, which come every few seconds
 * from anyone who can reach the port: one check runs at a time, within a deadline, and its
 * answer is reused for a second.
 */
import { Worker } from 'node:worker_threads';

const REUSE_MS = 1000;
const DEADLINE_MS = 2000;

/** A check resolves when the store answers and throws (or resolves a reason) when it does not. */
export type StoreCheck = (deadlineMs: number) => Promise<string | undefined | void>;

export class StoreProbe {
  private last: { at: number; problem: string | undefined } | undefined;
  private running: Promise<string | undefined> | undefined;

  constructor(
    /** What the reasons name: the file, or the URL with its password masked. */
    private readonly location: string,
    private readonly checkStore: StoreCheck,
    private readonly deadlineMs = DEADLINE_MS,
  ) {}

  /** Undefined when the store answers, else why not, in one line. */
  check(): Promise<string | undefined> {
    if (this.last && Date.now() - this.last.at < REUSE_MS) return Promise.resolve(this.last.problem);
    this.running ??= this.run().then((problem) => {
      this.last = { at: Date.now(), problem };
      this.running = undefined;
      return problem;
    });
    return this.running;
  }

  private run(): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve(`feedback database ${this.location} did not answer within ${this.deadlineMs / 1000} s (a lock held by another process, a slow disk, or a database server that does not respond)`),
        this.deadlineMs,
      );
      this.checkStore(this.deadlineMs).then(
        (problem) => {
          clearTimeout(timer);
          resolve(problem ?? undefined);
        },
        (err: Error) => {
          clearTimeout(timer);
          const message = err.message.replace(/\s+/g, ' ');
          resolve(message.includes(this.location) ? message : `feedback database ${this.location}: ${message}`);
        },
      );
    });
  }
}

/**
 * Opens and reads a SQLite file in a worker thread (probe-worker.ts): both are synchronous and
 * can wait on a lock or a slow disk, which must never hold the server's event loop. The worker
 * is stopped at the deadline.
 */
export function probeSqliteFile(file: string, deadlineMs: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(new URL('./probe-worker.js', import.meta.url), { workerData: { file } });
    } catch (err) {
      reject(new Error(`the probe could not start (${(err as Error).message})`));
      return;
    }
    const timer = setTimeout(() => void worker.terminate(), deadlineMs + 100);
    worker.once('message', (problem: string | null) => {
      clearTimeout(timer);
      resolve(problem ?? undefined);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
