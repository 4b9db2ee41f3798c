/**
 * The Prometheus side, loaded only with --metrics-port. Names, meanings and buckets are TEI's
 * (router/src/prometheus.rs, router/src/lib.rs) wherever TEI has the metric, so its dashboards
 * and alerts carry over; ours are prefixed rerank_mcp_. Durations are in seconds.
 */
import { createServer, type Server } from 'node:http';
import client from 'prom-client';
import { PACKAGE_VERSION } from '../version.js';
import type { CallRecord, EngineTimingsLike, FailureKind } from './call.js';
import { state } from './state.js';

/** TEI: 35 buckets, 10 µs × 1.5^k (15 µs … ~13.8 min). */
const DURATION_BUCKETS = Array.from({ length: 35 }, (_, k) => 0.00001 * 1.5 ** (k + 1));
/** TEI: powers of two up to the model's max input length (2^19 as the ceiling here: models differ). */
const INPUT_LENGTH_BUCKETS = Array.from({ length: 20 }, (_, k) => 2 ** k);
const BATCH_SIZE_BUCKETS = Array.from({ length: 13 }, (_, k) => 2 ** k);
const BATCH_TOKENS_BUCKETS = Array.from({ length: 21 }, (_, k) => 2 ** k);

export class Metrics {
  readonly registry = new client.Registry();
  private readonly requestCount: client.Counter;
  private readonly requestSuccess: client.Counter;
  private readonly requestFailure: client.Counter;
  private readonly requestDuration: client.Histogram;
  private readonly tokenization: client.Histogram;
  private readonly queue: client.Histogram;
  private readonly inference: client.Histogram;
  private readonly inputLength: client.Histogram;
  private readonly batchSize: client.Histogram;
  private readonly batchTokens: client.Histogram;
  private readonly cancelled: client.Counter;
  private readonly refused: client.Counter;
  private readonly feedbackStored: client.Counter;
  private readonly feedbackRefused: client.Counter;
  private readonly storeErrors: client.Counter;
  private server: Server | undefined;

  constructor() {
    const registers = [this.registry];
    const counter = (name: string, help: string, labelNames: string[] = []) => new client.Counter({ name, help, labelNames, registers });
    const histogram = (name: string, help: string, buckets: number[], labelNames: string[] = []) => new client.Histogram({ name, help, buckets, labelNames, registers });
    const byCall = ['method', 'transport'];
    this.requestCount = counter('te_request_count', 'Requests received: MCP tool calls and REST API calls', byCall);
    this.requestSuccess = counter('te_request_success', 'Requests answered successfully', byCall);
    this.requestFailure = counter('te_request_failure', 'Requests failed, by error kind (validation, tokenizer, overloaded, unhealthy, backend, cancelled)', [...byCall, 'err']);
    this.requestDuration = histogram('te_request_duration', 'Request duration, receipt to answer (s)', DURATION_BUCKETS, byCall);
    this.tokenization = histogram('te_request_tokenization_duration', 'Tokenization (and cache lookup) duration of a request (s)', DURATION_BUCKETS);
    this.queue = histogram('te_request_queue_duration', 'Time a request waited in the batch queue (s)', DURATION_BUCKETS);
    this.inference = histogram('te_request_inference_duration', 'Model run time of the batches that held a request (s)', DURATION_BUCKETS);
    this.inputLength = histogram('te_request_input_length', 'Tokens a request sent to the model', INPUT_LENGTH_BUCKETS);
    this.batchSize = histogram('te_batch_next_size', 'Pairs per batch run', BATCH_SIZE_BUCKETS);
    this.batchTokens = histogram('te_batch_next_tokens', 'Padded tokens per batch run', BATCH_TOKENS_BUCKETS);
    const sources = state.sources;
    new client.Gauge({ name: 'te_queue_size', help: 'Requests in the batch queue (waiting or running)', registers, collect() { this.set(sources.queueSize?.() ?? 0); } });

    this.cancelled = counter('rerank_mcp_calls_cancelled_total', 'Calls cancelled by the client (MCP notifications/cancelled, HTTP disconnect)', byCall);
    this.refused = counter('rerank_mcp_calls_refused_total', 'Calls refused before any inference: budget = over --max-call-tokens, busy = too many at once', ['reason']);
    this.feedbackStored = counter('rerank_mcp_feedback_labels_stored_total', 'Feedback labels stored (committed)');
    this.feedbackRefused = counter('rerank_mcp_feedback_labels_refused_total', 'Feedback calls refused (invalid, unknown rerank_id, store unavailable)');
    this.storeErrors = counter('rerank_mcp_store_errors_total', 'Feedback store operations that failed', ['backend', 'operation']);
    // Values the engine and the transports keep anyway: read at scrape time, nothing on the call path.
    const mirror = (name: string, help: string, read: () => number | undefined, labelNames: string[] = []) =>
      new client.Counter({ name, help, labelNames, registers, collect() { const v = read(); if (v === undefined) return; this.reset(); this.inc(v); } });
    mirror('rerank_mcp_score_cache_hits_total', 'Pairs answered from the score cache', () => sources.cache?.()?.hits);
    mirror('rerank_mcp_score_cache_misses_total', 'Pairs not found in the score cache', () => sources.cache?.()?.misses);
    mirror('rerank_mcp_model_reloads_total', 'Model reloads that switched the served model (SIGHUP, files changed, promotion)', () => sources.modelCounters?.().reloads);
    mirror('rerank_mcp_model_reload_failures_total', 'Reloads that failed (the previous model kept serving)', () => sources.modelCounters?.().reloadFailures);
    mirror('rerank_mcp_model_promotions_total', 'Reloads that switched to another served version (finetune --promote-to, rollback)', () => sources.modelCounters?.().versionSwitches);
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new client.Gauge({ name, help, registers, collect() { this.set(read() ?? 0); } });
    gauge('rerank_mcp_score_cache_entries', 'Scores held in the cache', () => sources.cache?.()?.entries);
    gauge('rerank_mcp_rerank_log_bytes', 'Query and candidate text bytes in the rerank log (as measured by this process)', () => sources.rerankLogBytes?.());
    gauge('rerank_mcp_sessions', 'Open MCP sessions (HTTP sessions, or stdio clients of this process)', () => sources.sessions?.());
    gauge('rerank_mcp_daemon_clients', 'Clients attached to the shared daemon', () => sources.daemonClients?.());
    gauge('rerank_mcp_calls_in_flight', 'Calls being served', () => sources.inFlight?.());
    new client.Gauge({
      name: 'rerank_mcp_model_info',
      help: 'The served model: 1, with its identity in labels',
      labelNames: ['model', 'fingerprint', 'version', 'variant', 'rerank_mcp_version'],
      registers,
      collect() {
        this.reset();
        const m = sources.model?.();
        if (m) this.set({ ...m, rerank_mcp_version: PACKAGE_VERSION }, 1);
      },
    });
    // Process CPU, memory, event-loop lag, GC: what tells a slow call from a starved process.
    client.collectDefaultMetrics({ register: this.registry });
  }

  call(record: CallRecord, durationMs: number, failure: FailureKind | undefined): void {
    const labels = { method: record.start.method, transport: record.start.transport };
    this.requestCount.inc(labels);
    if (failure === undefined) this.requestSuccess.inc(labels);
    else this.requestFailure.inc({ ...labels, err: failure });
    if (failure === 'cancelled') this.cancelled.inc(labels);
    if (record.refusal) this.refused.inc({ reason: record.refusal });
    this.requestDuration.observe(labels, durationMs / 1000);
    if (record.engineCalls > 0) this.inputLength.observe(record.tokens);
  }

  engine(t: EngineTimingsLike): void {
    this.tokenization.observe(t.tokenizationMs / 1000);
    this.queue.observe(t.queueMs / 1000);
    this.inference.observe(t.inferenceMs / 1000);
  }

  batch(pairs: number, tokens: number): void {
    this.batchSize.observe(pairs);
    this.batchTokens.observe(tokens);
  }

  feedback(stored: number | undefined): void {
    if (stored === undefined) this.feedbackRefused.inc();
    else this.feedbackStored.inc(stored);
  }

  storeError(backend: string, operation: string): void {
    this.storeErrors.inc({ backend, operation });
  }

  /** GET /metrics on its own port, no token (as TEI's --prometheus-port): bind it where only the scraper reaches. */
  listen(port: number, host: string): Promise<{ url: string; close: () => Promise<void> }> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const address = server.address();
        const bound = typeof address === 'object' && address ? address.port : port;
        resolve({
          url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
          close: () => new Promise<void>((done) => server.close(() => done())),
        });
      });
    });
  }
}
