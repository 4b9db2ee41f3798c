/**
 * Traces over OTLP/HTTP (protobuf), loaded only when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set. A call's spans are made when it ends, from the
 * times its record kept: the server span with the MCP semantic conventions (or HTTP's for
 * REST) and OpenInference's reranker attributes, and children for tokenization, queue,
 * inference and the store write. The caller's W3C trace context (traceparent in HTTP headers or
 * in params._meta) is the parent.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { PACKAGE_VERSION } from '../version.js';
import type { CallRecord, FailureKind } from './call.js';

const propagator = new W3CTraceContextPropagator();
const getter = {
  get: (carrier: Record<string, string | undefined>, key: string) => carrier[key],
  keys: (carrier: Record<string, string | undefined>) => Object.keys(carrier),
};

export class Tracing {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;

  constructor(env: NodeJS.ProcessEnv) {
    const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY);
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'rerank-mcp', 'service.version': PACKAGE_VERSION }),
      // The exporter reads the endpoint, headers and timeout from the standard OTEL_EXPORTER_OTLP_* variables.
      spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), ...(Number.isFinite(delay) && delay > 0 ? { scheduledDelayMillis: delay } : {}) })],
    });
    this.tracer = this.provider.getTracer('rerank-mcp', PACKAGE_VERSION);
  }

  export(record: CallRecord, durationMs: number, failure: FailureKind | undefined, detail?: { message?: string; status?: number }): void {
    const epoch = (t: number) => performance.timeOrigin + t;
    const { start } = record;
    const parent = start.traceparent ? propagator.extract(ROOT_CONTEXT, { traceparent: start.traceparent, tracestate: start.tracestate }, getter) : ROOT_CONTEXT;
    const name = start.face === 'mcp' ? `tools/call ${start.method}` : `POST ${start.method}`;
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER, startTime: epoch(record.startedAt), attributes: { ...record.attributes, 'rerank_mcp.request_id': record.requestId, 'rerank_mcp.transport': start.transport } }, parent);
    if (start.client) span.setAttribute('rerank_mcp.client', start.client);
    if (record.engineCalls > 0) {
      span.setAttributes({ 'rerank_mcp.tokens': record.tokens, 'rerank_mcp.characters': record.characters });
    }
    if (detail?.status !== undefined) span.setAttribute('http.response.status_code', detail.status);
    if (failure) {
      span.setAttribute('error.type', failure);
      if (failure !== 'cancelled') span.setStatus({ code: SpanStatusCode.ERROR, message: detail?.message?.slice(0, 500) });
    }
    const context = trace.setSpan(ROOT_CONTEXT, span);
    for (const phase of record.phases) {
      this.tracer.startSpan(phase.name, { kind: SpanKind.INTERNAL, startTime: epoch(phase.start), attributes: phase.attributes }, context).end(epoch(phase.end));
    }
    span.end(epoch(record.startedAt + durationMs));
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
