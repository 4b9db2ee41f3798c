/**
 * What is switched on: metrics and tracing stay undefined (and their libraries unloaded) unless
 * the user asks for them (--metrics-port, OTEL_EXPORTER_OTLP_ENDPOINT). `sources` are the values
 * read at scrape time, registered by whoever owns them (the engine host, the transports).
 */
import type { Metrics } from './metrics.js';
import type { Tracing } from './tracing.js';

export interface TelemetrySources {
  /** Calls waiting in the batch queue or running in it (TEI's te_queue_size). */
  queueSize?: () => number;
  inFlight?: () => number;
  cache?: () => { hits: number; misses: number; entries: number } | undefined;
  /** The model being served, for the info gauge. */
  model?: () => { model: string; fingerprint: string; version: string; variant: string } | undefined;
  modelCounters?: () => { reloads: number; reloadFailures: number; versionSwitches: number };
  rerankLogBytes?: () => number | undefined;
  /** Open MCP sessions (HTTP sessions, or stdio clients of this process). */
  sessions?: () => number;
  daemonClients?: () => number;
}

export const state: { metrics: Metrics | undefined; tracing: Tracing | undefined; traceDocuments: boolean; sources: TelemetrySources } = {
  metrics: undefined,
  tracing: undefined,
  traceDocuments: false,
  sources: {},
};
