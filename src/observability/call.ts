/**
 * One request as operators count it: one MCP tool call or one REST API call. Whoever receives it
 * (the MCP server's tools/call handler, the REST routes) begins a record; the api layer adds the
 * engine's timings and the store writes; the end feeds the metrics, the access log line and the
 * trace. Everything here is plain arithmetic unless metrics or tracing are on.
 */
import type { EngineTimings } from '../timings.js';
import { randomUUID } from 'node:crypto';
import { log, logFormat, logScope, type LogFields } from '../log.js';
import { state } from './state.js';

export type Transport = 'stdio' | 'http' | 'daemon' | 'rest';
export type AttributeValue = string | number | boolean;

export interface CallStart {
  /** 'mcp' for a tool call, 'rest' for a REST route. */
  face: 'mcp' | 'rest';
  transport: Transport;
  /** The tool name, or the REST route (/v1/rerank). */
  method: string;
  /** The caller's id for it (x-request-id, or _meta's); one is made when absent or unusable. */
  requestId?: string;
  client?: string;
  sessionId?: string;
  /** W3C trace context of the caller, from HTTP headers or params._meta. */
  traceparent?: string;
  tracestate?: string;
  /** Span attributes known at the start (the protocol's, e.g. mcp.method.name). */
  attributes?: Record<string, AttributeValue>;
}

/** TEI's error kinds (te_request_failure{err}), plus cancelled. */
export type FailureKind = 'validation' | 'tokenizer' | 'overloaded' | 'unhealthy' | 'backend' | 'cancelled';

/** The engine's timings, by their one definition at the bottom of the tree. */
export type EngineTimingsLike = EngineTimings;

export interface Phase {
  name: string;
  start: number;
  end: number;
  attributes?: Record<string, AttributeValue>;
}

/** A usable caller-chosen id: short, printable, no spaces (it goes into headers and log lines). */
const USABLE_ID = /^[\w.:@/+=-]{1,128}$/;

export class CallRecord {
  readonly requestId: string;
  readonly startedAt = performance.now();
  readonly startedEpochMs = Date.now();
  tokenizationMs = 0;
  queueMs = 0;
  inferenceMs = 0;
  tokens = 0;
  characters = 0;
  engineCalls = 0;
  /** Engine work and store writes, for child spans (kept only while tracing). */
  readonly phases: Phase[] = [];
  readonly attributes: Record<string, AttributeValue>;
  /** Why a refusal happened, when the code that refused knows better than the error class (e.g. 'budget'). */
  refusal: string | undefined;
  private logFields: LogFields;
  private ended = false;

  constructor(readonly start: CallStart) {
    this.requestId = start.requestId !== undefined && USABLE_ID.test(start.requestId) ? start.requestId : randomUUID();
    this.attributes = { ...start.attributes };
    this.logFields = { request_id: this.requestId, client: start.client, method: start.method, transport: start.transport };
  }

  /** Whether spans will be exported: callers skip building attributes (and copying texts) otherwise. */
  get traced(): boolean {
    return state.tracing !== undefined;
  }

  /** Whether spans may carry document texts (--trace-documents); off by default, they are the user's data. */
  get traceDocuments(): boolean {
    return state.traceDocuments;
  }

  /** Runs the call's work with its request id on every log line. */
  run<T>(work: () => T): T {
    return logScope(this.logFields, work);
  }

  addEngine(t: EngineTimingsLike): void {
    this.engineCalls++;
    this.tokenizationMs += t.tokenizationMs;
    this.queueMs += t.queueMs;
    this.inferenceMs += t.inferenceMs;
    this.tokens += t.tokens;
    this.characters += t.characters;
    state.metrics?.engine(t);
    if (!this.traced) return;
    const queueEnd = t.queuedAt + t.queueMs;
    this.phases.push(
      { name: 'tokenization', start: t.startedAt, end: t.queuedAt, attributes: { 'rerank_mcp.pairs': t.pairs, 'rerank_mcp.pairs_cached': t.cached, 'rerank_mcp.characters': t.characters } },
      { name: 'queue', start: t.queuedAt, end: queueEnd },
      { name: 'inference', start: queueEnd, end: queueEnd + t.inferenceMs, attributes: { 'rerank_mcp.tokens': t.tokens, 'rerank_mcp.batches': t.batches } },
    );
  }

  /** Times `work` as a child span (the store write) when tracing; runs it plainly otherwise. */
  async phase<T>(name: string, work: () => Promise<T>, attributes?: Record<string, AttributeValue>): Promise<T> {
    if (!this.traced) return work();
    const start = performance.now();
    try {
      return await work();
    } finally {
      this.phases.push({ name, start, end: performance.now(), attributes });
    }
  }

  setAttributes(attributes: Record<string, AttributeValue | undefined>): void {
    for (const [key, value] of Object.entries(attributes)) if (value !== undefined) this.attributes[key] = value;
  }

  get computeMs(): number {
    return this.tokenizationMs + this.queueMs + this.inferenceMs;
  }

  /** TEI's response headers, in whole milliseconds as TEI sends them. */
  timingHeaders(totalMs = performance.now() - this.startedAt): Record<string, string> {
    return {
      'x-compute-time': String(Math.round(this.computeMs)),
      'x-compute-tokens': String(this.tokens),
      'x-compute-characters': String(this.characters),
      'x-tokenization-time': String(Math.round(this.tokenizationMs)),
      'x-queue-time': String(Math.round(this.queueMs)),
      'x-inference-time': String(Math.round(this.inferenceMs)),
      'x-total-time': String(Math.round(totalMs)),
      'x-request-id': this.requestId,
    };
  }

  /** The same timings for an MCP result's _meta (milliseconds, with fractions). */
  meta(totalMs = performance.now() - this.startedAt): Record<string, unknown> {
    const ms = (n: number) => Math.round(n * 1000) / 1000;
    return {
      'rerank-mcp/request_id': this.requestId,
      'rerank-mcp/timing': {
        compute_ms: ms(this.computeMs),
        tokenization_ms: ms(this.tokenizationMs),
        queue_ms: ms(this.queueMs),
        inference_ms: ms(this.inferenceMs),
        total_ms: ms(totalMs),
        tokens: this.tokens,
        characters: this.characters,
      },
    };
  }

  /** Counts, logs and traces the call once; `failure` absent means it succeeded. */
  end(failure?: FailureKind, detail?: { message?: string; status?: number }): void {
    if (this.ended) return;
    this.ended = true;
    const durationMs = performance.now() - this.startedAt;
    state.metrics?.call(this, durationMs, failure);
    if (logFormat() === 'json') {
      log(failure ? `${this.start.method} failed (${failure})` : `${this.start.method} done`, {
        ...this.logFields,
        session_id: this.start.sessionId,
        duration_ms: Math.round(durationMs * 1000) / 1000,
        tokens: this.tokens,
        characters: this.characters,
        tokenization_ms: Math.round(this.tokenizationMs * 1000) / 1000,
        queue_ms: Math.round(this.queueMs * 1000) / 1000,
        inference_ms: Math.round(this.inferenceMs * 1000) / 1000,
        outcome: failure ? (failure === 'cancelled' ? 'cancelled' : 'error') : 'success',
        ...(failure && failure !== 'cancelled' ? { err: failure } : {}),
        ...(this.refusal ? { refusal: this.refusal } : {}),
        ...(detail?.status !== undefined ? { status: detail.status } : {}),
        ...(detail?.message ? { error: detail.message.slice(0, 500) } : {}),
      }, failure && failure !== 'cancelled' && failure !== 'validation' ? 'error' : 'info');
    }
    state.tracing?.export(this, durationMs, failure, detail);
  }
}

const calls = new WeakMap<object, CallRecord>();

/** Begins the record of one request. */
export function beginCall(start: CallStart): CallRecord {
  return new CallRecord(start);
}

/** Ties a record to an object both ends of a call see (the MCP SDK's per-request `extra`). */
export function attachCall(key: object, record: CallRecord): void {
  calls.set(key, record);
}

export function callAttachedTo(key: object): CallRecord | undefined {
  return calls.get(key);
}
