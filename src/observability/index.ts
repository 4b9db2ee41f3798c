/**
 * The one place metrics, logs and traces are reported to; the only file of this folder that
 * others import. It sits at the bottom (beside log.ts): the faces (rest, mcp), the api layer,
 * the transports and the commands report here; the engine does not: it hands out timings
 * (EngineTimings, BatchRun, counters) and its callers pass them on.
 *
 * Off by default and then nearly free: no Prometheus client, no OpenTelemetry SDK is loaded
 * unless --metrics-port or OTEL_EXPORTER_OTLP_ENDPOINT asks for it, and a call record is a
 * few numbers.
 */
import { log } from '../log.js';
import { state, type TelemetrySources } from './state.js';

export { beginCall, attachCall, callAttachedTo, CallRecord, type CallStart, type FailureKind, type Transport, type AttributeValue, type EngineTimingsLike } from './call.js';
export type { TelemetrySources } from './state.js';

export interface TelemetryOptions {
  /** Serve GET /metrics on this port (0: a free one); undefined: no metrics. */
  metricsPort?: number;
  /** Where the metrics port binds: the server's --host (loopback by default). */
  host: string;
  env?: NodeJS.ProcessEnv;
  /** Put document texts into spans (OpenInference's reranker.input_documents). */
  traceDocuments?: boolean;
}

export interface RunningTelemetry {
  metricsUrl?: string;
  tracing: boolean;
}

let closeMetrics: (() => Promise<void>) | undefined;

/** Whether the standard OpenTelemetry variables ask for trace export. */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && env.OTEL_SDK_DISABLED !== 'true' && env.OTEL_TRACES_EXPORTER !== 'none';
}

/** Starts what the options and environment ask for; a metrics port that cannot be bound is an error that names it. */
export async function startTelemetry(options: TelemetryOptions): Promise<RunningTelemetry> {
  const env = options.env ?? process.env;
  const running: RunningTelemetry = { tracing: false };
  state.traceDocuments = options.traceDocuments ?? false;
  if (options.metricsPort !== undefined && !state.metrics) {
    const { Metrics } = await import('./metrics.js');
    const metrics = new Metrics();
    try {
      const served = await metrics.listen(options.metricsPort, options.host);
      closeMetrics = served.close;
      running.metricsUrl = served.url;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(`cannot serve metrics on ${options.host}:${options.metricsPort} (${code ?? (err as Error).message})${code === 'EADDRINUSE' ? ': another process holds that port; pick another --metrics-port (env RERANK_METRICS_PORT)' : ': check --metrics-port and --host'}`);
    }
    state.metrics = metrics;
    log(`serving Prometheus metrics at ${running.metricsUrl}`);
  }
  if (tracingWanted(env) && !state.tracing) {
    const { Tracing } = await import('./tracing.js');
    state.tracing = new Tracing(env);
    running.tracing = true;
    log(`exporting traces over OTLP/HTTP to ${env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT}`);
  }
  return running;
}

/** Flushes the spans not yet sent and closes the metrics port (on shutdown). */
export async function stopTelemetry(): Promise<void> {
  const tracing = state.tracing;
  state.tracing = undefined;
  await Promise.all([tracing?.shutdown().catch(() => undefined), closeMetrics?.()]);
  closeMetrics = undefined;
}

/** Adds or replaces the values read at scrape time. */
export function watch(sources: TelemetrySources): void {
  Object.assign(state.sources, sources);
}

export function metricsOn(): boolean {
  return state.metrics !== undefined;
}

/** One batch the engine ran (te_batch_next_size, te_batch_next_tokens). */
export function observeBatch(batch: { pairs: number; tokens: number }): void {
  state.metrics?.batch(batch.pairs, batch.tokens);
}

/** A feedback call's labels stored, or undefined when the call was refused. */
export function countFeedback(stored: number | undefined): void {
  state.metrics?.feedback(stored);
}

export function countStoreError(backend: string, operation: string): void {
  state.metrics?.storeError(backend, operation);
}
