/**
 * One call on behalf of a client, whatever face it came through: its cancellation signal,
 * where its progress goes (MCP progress notifications; nowhere for REST), and who made it
 * (recorded with the rerank log and feedback).
 */
import type { EngineHost } from '../engine/engine-host.js';
import { CallTooLargeError, type EngineTimings, type ScoreOptions, type ScoringEngine } from '../engine/scoring-engine.js';
import type { ProgressEvent } from '../hub/progress.js';
import type { CallRecord } from '../observability/index.js';

export interface CallContext {
  signal: AbortSignal;
  /** Absent when the caller did not ask for progress. */
  progress?: CallProgress;
  /** Client name, recorded as the default `source` of logged calls and feedback. */
  source?: string;
  sessionId?: string;
  /** Where the call's timings go (metrics, headers, _meta, traces); absent for calls nobody counts. */
  record?: CallRecord;
}

/** A request the caller must fix (wrong combination of fields): MCP answers isError, REST 400. */
export class UsageError extends Error {}

/** A call over --max-call-tokens, with the fix: MCP answers isError, REST 413. */
export class CallTooLarge extends Error {}

/**
 * Progress of one call. The MCP spec wants the value to grow with every notification, and a
 * call may first wait for the model download (counted in bytes), then score (counted in
 * pairs): each phase counts on from where the previous one stopped.
 */
export class CallProgress {
  private last = -1;
  private offset = 0;

  constructor(
    private readonly send: (progress: number, total: number | undefined, message: string) => void,
    private readonly signal: AbortSignal,
  ) {}

  report(progress: number, total: number | undefined, message: string): void {
    const value = this.offset + progress;
    if (this.signal.aborted || value <= this.last) return;
    this.last = value;
    this.send(value, total === undefined ? undefined : this.offset + total, message);
  }

  nextPhase(): void {
    this.offset = Math.max(this.last, 0);
  }
}

/** Cancellation and per-batch progress for an engine call made on behalf of `call`. */
export function submitOptionsFor(call: CallContext): ScoreOptions {
  const record = call.record;
  const onTimings = record && ((t: EngineTimings) => record.addEngine(t));
  const progress = call.progress;
  if (!progress) return { signal: call.signal, onTimings };
  progress.nextPhase();
  return { signal: call.signal, onTimings, onProgress: (done, total) => progress.report(done, total, `scored ${done} of ${total} pairs`) };
}

/** Rethrows the engine's refusal of an oversized call as the fix a user can act on; other errors as they are. */
export function explainRefusal(err: unknown, call?: CallContext): never {
  if (err instanceof CallTooLargeError) {
    if (call?.record) call.record.refusal = 'budget';
    throw new CallTooLarge(`${err.message}: send fewer or shorter documents, or raise --max-call-tokens (env RERANK_MAX_CALL_TOKENS, 0 = no limit)`);
  }
  throw err;
}

/**
 * The engine, waiting for the model if it is still being fetched or loaded; a caller that
 * asked for progress hears how the download goes meanwhile.
 */
export async function engineFor(host: EngineHost, call: CallContext): Promise<ScoringEngine> {
  const progress = call.progress;
  if (host.loaded || !progress) return host.ready();
  const loadedByFile = new Map<string, number>();
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  const forward = (p: ProgressEvent) => {
    loadedByFile.set(p.file, p.loaded);
    const bytes = [...loadedByFile.values()].reduce((a, b) => a + b, 0);
    progress.report(bytes, undefined, `downloading ${p.file}: ${mb(p.loaded)} of ${mb(p.total)} MB`);
  };
  host.progress.on('download', forward);
  try {
    return await host.ready();
  } finally {
    host.progress.off('download', forward);
  }
}
