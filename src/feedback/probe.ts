/**
 * Is the feedback database reachable? Asked by readiness probes, which come every few seconds
 * from anyone who can reach the port: the check runs in a worker thread with a deadline, one at a
 * time, and its answer is reused for a second.
 */
import { Worker } from 'node:worker_threads';

const REUSE_MS = 1000;

export class StoreProbe {
  private last: { at: number; problem: string | undefined } | undefined;
  private running: Promise<string | undefined> | undefined;

  constructor(
    private readonly file: string,
    private readonly timeoutMs = 2000,
  ) {}

  /** Undefined when the database answers, else why not, in one line. */
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
      let worker: Worker;
      try {
        worker = new Worker(new URL('./probe-worker.js', import.meta.url), { workerData: { file: this.file } });
      } catch (err) {
        resolve(`feedback database ${this.file}: the probe could not start (${(err as Error).message})`);
        return;
      }
      const timer = setTimeout(() => {
        resolve(`feedback database ${this.file} did not answer within ${this.timeoutMs / 1000} s (a lock held by another process, or a slow disk)`);
        void worker.terminate();
      }, this.timeoutMs);
      worker.once('message', (problem: string | null) => {
        clearTimeout(timer);
        resolve(problem ?? undefined);
      });
      worker.once('error', (err) => {
        clearTimeout(timer);
        resolve(`feedback database ${this.file}: ${err.message}`);
      });
    });
  }
}
