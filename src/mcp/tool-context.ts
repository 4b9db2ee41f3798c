/**
 * What every tool handler shares: structured results mirrored as text for clients that
 * only read `content`, progress notifications when the caller asked for them, and the
 * caller's cancellation signal.
 */
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest, CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { SubmitOptions } from '../engine/batch-queue.js';
import type { EngineHost } from '../engine/engine-host.js';
import type { ScoringEngine } from '../engine/scoring-engine.js';
import type { ProgressEvent } from '../hub/progress.js';

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export function structuredResult<T extends Record<string, unknown>>(data: T): CallToolResult & { structuredContent: T } {
  return { content: [{ type: 'text', text: JSON.stringify(data) }], structuredContent: data };
}

export function errorResult(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** Cancellation and per-batch progress for an engine call made on behalf of `extra`'s request. */
export function submitOptionsFor(extra: ToolExtra): SubmitOptions {
  const progressToken = extra._meta?.progressToken;
  return {
    signal: extra.signal,
    onProgress:
      progressToken === undefined
        ? undefined
        : (done, total) => {
            if (extra.signal.aborted) return;
            extra
              .sendNotification({ method: 'notifications/progress', params: { progressToken, progress: done, total, message: `scored ${done} of ${total} pairs` } })
              .catch(() => undefined);
          },
  };
}

/**
 * The engine, waiting for the model if it is still being fetched or loaded; a caller that
 * asked for progress hears how the download goes meanwhile.
 */
export async function engineFor(host: EngineHost, extra: ToolExtra): Promise<ScoringEngine> {
  const progressToken = extra._meta?.progressToken;
  if (host.loaded || progressToken === undefined) return host.ready();
  const forward = (p: ProgressEvent) => {
    extra
      .sendNotification({ method: 'notifications/progress', params: { progressToken, progress: p.loaded, total: p.total, message: `downloading ${p.file}` } })
      .catch(() => undefined);
  };
  host.progress.on('download', forward);
  try {
    return await host.ready();
  } finally {
    host.progress.off('download', forward);
  }
}
