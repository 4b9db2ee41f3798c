/**
 * What every tool handler shares: structured results mirrored as text for clients that
 * only read `content`, progress notifications when the caller asked for them, and the
 * caller's cancellation signal.
 */
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest, CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { SubmitOptions } from '../engine/batch-queue.js';
import type { EngineHost } from '../engine/engine-host.js';
import { CallTooLargeError, type ScoringEngine } from '../engine/scoring-engine.js';
import type { ProgressEvent } from '../hub/progress.js';

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export function structuredResult<T extends Record<string, unknown>>(data: T): CallToolResult & { structuredContent: T } {
  return { content: [{ type: 'text', text: JSON.stringify(data) }], structuredContent: data };
}

export function errorResult(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/**
 * Progress notifications of one request. The spec wants the value to grow with every
 * notification, and a call may first wait for the model download (counted in bytes), then
 * score (counted in pairs): each phase counts on from where the previous one stopped.
 */
class RequestProgress {
  private last = -1;
  private offset = 0;

  constructor(private readonly extra: ToolExtra) {}

  report(progress: number, total: number | undefined, message: string): void {
    const token = this.extra._meta?.progressToken;
    const value = this.offset + progress;
    if (token === undefined || this.extra.signal.aborted || value <= this.last) return;
    this.last = value;
    const params = { progressToken: token, progress: value, ...(total === undefined ? {} : { total: this.offset + total }), message };
    this.extra.sendNotification({ method: 'notifications/progress', params }).catch(() => undefined);
  }

  nextPhase(): void {
    this.offset = Math.max(this.last, 0);
  }
}

const progressByRequest = new WeakMap<ToolExtra, RequestProgress>();
const progressOf = (extra: ToolExtra): RequestProgress => {
  let progress = progressByRequest.get(extra);
  if (!progress) progressByRequest.set(extra, (progress = new RequestProgress(extra)));
  return progress;
};

/** Cancellation and per-batch progress for an engine call made on behalf of `extra`'s request. */
export function submitOptionsFor(extra: ToolExtra): SubmitOptions {
  if (extra._meta?.progressToken === undefined) return { signal: extra.signal };
  const progress = progressOf(extra);
  progress.nextPhase();
  return { signal: extra.signal, onProgress: (done, total) => progress.report(done, total, `scored ${done} of ${total} pairs`) };
}

/** Rethrows the engine's refusal of an oversized call as the fix a user can act on; other errors as they are. */
export function explainRefusal(err: unknown): never {
  if (err instanceof CallTooLargeError) {
    throw new Error(`${err.message}: send fewer or shorter documents, or raise --max-call-tokens (env RERANK_MAX_CALL_TOKENS, 0 = no limit)`);
  }
  throw err;
}

/**
 * The engine, waiting for the model if it is still being fetched or loaded; a caller that
 * asked for progress hears how the download goes meanwhile.
 */
export async function engineFor(host: EngineHost, extra: ToolExtra): Promise<ScoringEngine> {
  if (host.loaded || extra._meta?.progressToken === undefined) return host.ready();
  const progress = progressOf(extra);
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
