/**
 * Worker threads that run one of our modules, from dist/ as from the TypeScript sources: run under
 * tsx (tests, scripts), a worker needs tsx's loader too, which a plain `new Worker(url)` lacks.
 * Shared by the engine's tokenizer pool and the SQLite store's worker.
 */
import { Worker } from 'node:worker_threads';

/** Starts the module `name` (without extension) beside `callerUrl` (the caller's import.meta.url). */
export function startModuleWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  const fromSources = callerUrl.endsWith('.ts');
  const workerUrl = new URL(`./${name}${fromSources ? '.ts' : '.js'}`, callerUrl);
  if (!fromSources) return new Worker(workerUrl, { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(api)}).then((tsx) => tsx.tsImport(${JSON.stringify(workerUrl.href)}, ${JSON.stringify(callerUrl)}))`, { eval: true, workerData });
}
