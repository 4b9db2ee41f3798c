/**
 * Operating the server as TEI is operated (docs/operations.md), against the built CLI: a real
 * Prometheus scrapes --metrics-port and its query API counts exactly the REST and MCP calls made
 * (housekeeping not counted); the queue histograms move by what a call waited; REST answers
 * carry TEI's timing headers and echo x-request-id; MCP results carry the same in _meta;
 * every --log-format json line parses and the call lines carry the request id; traces exported
 * over OTLP/HTTP are decoded with the official protobuf definitions; the shared daemon serves
 * the metrics of all its clients.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import protobuf from 'protobufjs';
import { REPO_ROOT, TINY_CE, stopDaemons } from './helpers/fixtures.js';
import { connectHttp, connectStdio, freshDbPath, startHttpServer, type HttpServerProcess } from './helpers/mcp.js';
import { freePort } from './helpers/net.js';
import { startPrometheus, type PrometheusServer } from './helpers/prometheus.js';

/** Every call waits this long in the batch queue before its first batch: a known queue time. */
const BATCH_WAIT_MS = 300;
const documents = ['the cat sat on the mat', 'stock prices fell sharply', 'a kitten sleeps on a rug'];
let unique = 0;
/** A query never sent before: no pair comes from the score cache, so every call reaches the queue. */
const freshQuery = () => `where does the cat sleep ${++unique}`;

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown>; _meta?: Record<string, any> };

let server: HttpServerProcess;
let base: string;
let metricsUrl: string;
let metricsPort: number;
let prometheus: PrometheusServer;
let mcp: Client;
/** Requests made so far, as operators count them (tool calls and REST API calls). */
let calls = 0;

before(async () => {
  metricsPort = await freePort();
  server = await startHttpServer(['--model', TINY_CE, '--metrics-port', String(metricsPort), '--log-format', 'json', '--batch-wait-ms', String(BATCH_WAIT_MS), '--max-call-tokens', '2000']);
  base = new URL(server.url).origin;
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  prometheus = await startPrometheus([`127.0.0.1:${metricsPort}`]);
  mcp = await connectHttp(server.url);
});
after(async () => {
  await mcp?.close();
  await prometheus?.stop();
  await server?.stop();
});

async function rerank(headers: Record<string, string> = {}, body: unknown = { query: freshQuery(), documents }) {
  const res = await fetch(`${base}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  calls++;
  return { res, json: (await res.json()) as any };
}

async function tool(name: string, args: Record<string, unknown>, meta?: Record<string, unknown>): Promise<ToolResult> {
  const result = (await mcp.callTool({ name, arguments: args, ...(meta ? { _meta: meta } : {}) })) as ToolResult;
  calls++;
  return result;
}

/** The samples of a Prometheus text exposition, by series (name plus labels as printed). */
async function scrape(url = metricsUrl): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const sumOf = (samples: Map<string, number>, name: string, where: (series: string) => boolean = () => true) =>
  [...samples].filter(([series]) => (series === name || series.startsWith(`${name}{`)) && where(series)).reduce((n, [, v]) => n + v, 0);

test('REST: TEI timing headers on /v1/rerank, x-request-id echoed (or made), the same on errors', async () => {
  const query = freshQuery();
  const { res, json } = await rerank({ 'x-request-id': 'ops-rest-1' }, { query, documents });
  assert.equal(res.status, 200, JSON.stringify(json));
  assert.equal(res.headers.get('x-request-id'), 'ops-rest-1');
  const h = (name: string) => {
    const value = res.headers.get(name);
    assert.match(value ?? '', /^\d+$/, `${name}: ${value}`);
    return Number(value);
  };
  assert.equal(h('x-compute-tokens'), json.usage.total_tokens);
  assert.ok(h('x-compute-tokens') > 0);
  assert.equal(h('x-compute-characters'), documents.reduce((n, d) => n + query.length + d.length, 0));
  // The batch queue held the call for --batch-wait-ms before its batch ran.
  assert.ok(h('x-queue-time') >= BATCH_WAIT_MS - 20, `x-queue-time ${h('x-queue-time')}`);
  assert.ok(h('x-inference-time') >= 0 && h('x-tokenization-time') >= 0);
  const parts = h('x-tokenization-time') + h('x-queue-time') + h('x-inference-time');
  assert.ok(Math.abs(h('x-compute-time') - parts) <= 2, `compute ${h('x-compute-time')} vs parts ${parts}`);
  assert.ok(h('x-total-time') >= h('x-compute-time'), 'total covers compute');

  const made = await rerank();
  const made2 = await rerank({ 'x-request-id': 'not a usable id, it has spaces' });
  for (const r of [made, made2]) assert.match(r.res.headers.get('x-request-id') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.notEqual(made.res.headers.get('x-request-id'), made2.res.headers.get('x-request-id'));

  const refused = await rerank({ 'x-request-id': 'ops-rest-bad' }, { query: 'q', documents: [] });
  assert.equal(refused.res.status, 400);
  assert.equal(refused.res.headers.get('x-request-id'), 'ops-rest-bad');
  // Over --max-call-tokens: refused before any inference, counted as a budget refusal.
  const long = Array.from({ length: 10 }, (_, i) => `${'the cat sat on a warm mat '.repeat(60)}${i}`);
  const tooLarge = await rerank({}, { query: freshQuery(), documents: long });
  assert.equal(tooLarge.res.status, 413, JSON.stringify(tooLarge.json));
});

test('MCP: tool results carry the timings and the request id in _meta', async () => {
  const result = await tool('rerank', { query: freshQuery(), documents, top_k: 2 }, { 'rerank-mcp/request_id': 'ops-mcp-1' });
  assert.ok(!result.isError, JSON.stringify(result));
  assert.equal(result._meta?.['rerank-mcp/request_id'], 'ops-mcp-1');
  const timing = result._meta?.['rerank-mcp/timing'];
  assert.ok(timing.queue_ms >= BATCH_WAIT_MS - 20, JSON.stringify(timing));
  assert.ok(timing.tokens > 0 && timing.characters > 0 && timing.total_ms >= timing.compute_ms, JSON.stringify(timing));
  const labeled = await tool('feedback', { rerank_id: result.structuredContent?.rerank_id, relevant: [0] });
  assert.equal(labeled.structuredContent?.stored, 1, JSON.stringify(labeled));
  const pair = await tool('score_pair', { query: freshQuery(), document: documents[0] });
  assert.match(pair._meta?.['rerank-mcp/request_id'], /^[0-9a-f-]{36}$/);
  const info = await tool('model_info', {});
  assert.equal(info._meta?.['rerank-mcp/timing'].tokens, 0, 'model_info runs no inference');
});

test('Prometheus: sum(te_request_count) equals the REST and MCP calls made; housekeeping is not counted', async () => {
  // Housekeeping a client and an orchestrator do: none of it is a request.
  await mcp.listTools();
  await mcp.ping();
  await fetch(`${base}/healthz`);
  await fetch(`${base}/readyz`);
  await fetch(metricsUrl);
  const expected = calls;
  const counted = await prometheus.until('sum(te_request_count)', (v) => v === expected);
  assert.equal(counted, expected, `Prometheus counted ${counted} requests, the test made ${expected}`);
  assert.equal(await prometheus.query('sum(te_request_count{transport="http", method="/v1/rerank"})'), 5);
  assert.equal(await prometheus.query('sum(te_request_count{method="rerank"})'), 1);
  assert.equal(await prometheus.query('sum(te_request_failure{err="validation"})'), 2, 'the empty documents call, the call over budget');
  assert.equal(await prometheus.query('sum(rerank_mcp_calls_refused_total{reason="budget"})'), 1);
  assert.equal(await prometheus.query('sum(rerank_mcp_feedback_labels_stored_total)'), 1);
  assert.ok((await prometheus.query('sum(rerank_mcp_score_cache_misses_total)'))! > 0);
  assert.equal(await prometheus.query('sum(te_request_success)'), expected - 2);
  assert.equal(await prometheus.query('count(rerank_mcp_model_info{fingerprint!=""})'), 1);
  assert.equal(await prometheus.query('sum(rerank_mcp_sessions)'), 1, 'one MCP session open');
});

test('histograms: a call that waited in the queue moves the queue histogram by that wait, and the others by one', async () => {
  const before = await scrape();
  const { res } = await rerank();
  const after = await scrape();
  const delta = (name: string, where?: (s: string) => boolean) => sumOf(after, name, where) - sumOf(before, name, where);
  assert.equal(delta('te_request_queue_duration_count'), 1);
  assert.ok(delta('te_request_queue_duration_sum') >= (BATCH_WAIT_MS - 20) / 1000, `queue sum moved ${delta('te_request_queue_duration_sum')}`);
  // TEI's buckets: 10 µs × 1.5^k. The wait lands above the 0.168 s bucket, not in it.
  assert.equal(delta('te_request_queue_duration_bucket', (s) => s.includes('le="0.16834112196028234"')), 0);
  assert.equal(delta('te_request_queue_duration_bucket', (s) => s.includes('le="+Inf"')), 1);
  assert.equal(delta('te_request_inference_duration_count'), 1);
  assert.equal(delta('te_request_tokenization_duration_count'), 1);
  assert.equal(delta('te_request_input_length_sum'), Number(res.headers.get('x-compute-tokens')));
  assert.ok(delta('te_batch_next_size_sum') >= documents.length, 'the batch held the call\'s pairs');
  assert.equal(delta('te_request_duration_count', (s) => s.includes('method="/v1/rerank"')), 1);
  // And through Prometheus, as a dashboard asks: the mean queue time of these calls is the batch wait.
  const mean = await prometheus.until('sum(te_request_queue_duration_sum) / sum(te_request_queue_duration_count)', (v) => v !== undefined && v >= 0.28);
  assert.ok(mean !== undefined && mean >= (BATCH_WAIT_MS - 20) / 1000, `mean queue ${mean}`);
});

test('deploy/grafana/rerank-mcp.json: every query runs on Prometheus and every metric it names is served', async () => {
  const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'rerank-mcp.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  // Declared metrics (# TYPE lines): a labelled counter nothing has incremented yet has no sample, but is served.
  const text = await (await fetch(metricsUrl)).text();
  const served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      for (const [name] of expr.matchAll(/\b(?:te|rerank_mcp|nodejs|process)_\w+/g)) {
        assert.ok(served.has(name) || served.has(name.replace(/_(bucket|sum|count)$/, '')), `${panel.title}: ${name} is not served`);
      }
      // Grafana's variables as a dashboard fills them in; a query Prometheus refuses would be a blank panel.
      await prometheus.query(expr.replaceAll('$job', '.+').replaceAll('$__rate_interval', '1m'));
    }
  }
});

test('--log-format json: every stderr line is one JSON object; every call line carries its request id', async () => {
  await new Promise((r) => setTimeout(r, 200));
  const lines = server.stderr().split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 5);
  const parsed = lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, any>;
    } catch {
      assert.fail(`not JSON: ${line}`);
    }
  });
  for (const line of parsed) {
    assert.equal(typeof line.time, 'string');
    assert.ok(['debug', 'info', 'warn', 'error'].includes(line.level), JSON.stringify(line));
    assert.equal(typeof line.msg, 'string');
  }
  const callLines = parsed.filter((l) => l.outcome !== undefined);
  assert.equal(callLines.length, calls, 'one line per request');
  for (const line of callLines) {
    assert.match(line.request_id, /\S/, JSON.stringify(line));
    for (const field of ['method', 'transport', 'duration_ms', 'tokens', 'client']) assert.ok(line[field] !== undefined, `${field} in ${JSON.stringify(line)}`);
  }
  const rest = callLines.find((l) => l.request_id === 'ops-rest-1');
  assert.equal(rest?.outcome, 'success');
  assert.equal(rest?.method, '/v1/rerank');
  assert.ok(rest!.tokens > 0);
  assert.equal(callLines.find((l) => l.request_id === 'ops-rest-bad')?.outcome, 'error');
  const tool = callLines.find((l) => l.request_id === 'ops-mcp-1');
  assert.equal(tool?.method, 'rerank');
  assert.equal(tool?.client, 'rerank-mcp-test');
});

/** OTLP/HTTP receiver: what the server exports, decoded with opentelemetry-proto's definitions. */
async function otlpReceiver(): Promise<{ url: string; spans: () => any[]; close: () => Promise<void> }> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(REPO_ROOT, 'test', 'helpers', 'otlp-proto', target);
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
  const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const spans: any[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      assert.equal(req.url, '/v1/traces');
      assert.equal(req.headers['content-type'], 'application/x-protobuf');
      const decoded = Request.toObject(Request.decode(Buffer.concat(chunks)), { longs: String, bytes: String, enums: String }) as any;
      for (const rs of decoded.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) spans.push({ ...span, resource: rs.resource });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, spans: () => spans, close: () => new Promise((r) => server.close(() => r())) };
}

const attrs = (span: any): Record<string, unknown> =>
  Object.fromEntries((span.attributes ?? []).map((a: any) => [a.key, a.value.stringValue ?? (a.value.intValue !== undefined ? Number(a.value.intValue) : a.value.doubleValue ?? a.value.boolValue)]));
const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');

test('OTLP traces: a span per call with MCP and OpenInference attributes, children for tokenization, queue, inference and the store write, parented on traceparent', async () => {
  const receiver = await otlpReceiver();
  const traced = await startHttpServer(['--model', TINY_CE, '--rerank-log-max-mb', '1'], { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'rerank-ops-test' });
  try {
    const client = await connectHttp(traced.url);
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parentId = 'b7ad6b7169203331';
    const query = 'where does the cat sleep, traced';
    const result = (await client.callTool({ name: 'rerank', arguments: { query, documents, top_k: 2 }, _meta: { traceparent: `00-${traceId}-${parentId}-01` } })) as ToolResult;
    assert.ok(!result.isError);
    const restParent = 'c7ad6b7169203332';
    const res = await fetch(`${new URL(traced.url).origin}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${restParent}-01` }, body: JSON.stringify({ query: 'rest traced', documents, top_n: 1 }) });
    assert.equal(res.status, 200);
    await client.close();
    const deadline = Date.now() + 15_000;
    const find = (name: string) => receiver.spans().find((s) => s.name === name);
    while ((!find('tools/call rerank') || !find('POST /v1/rerank') || receiver.spans().length < 10) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));

    const span = find('tools/call rerank');
    assert.ok(span, `spans: ${receiver.spans().map((s) => s.name).join(', ')}`);
    assert.equal(hex(span.traceId), traceId);
    assert.equal(hex(span.parentSpanId), parentId);
    assert.equal(span.kind, 'SPAN_KIND_SERVER');
    const a = attrs(span);
    assert.equal(a['mcp.method.name'], 'tools/call');
    assert.equal(a['gen_ai.tool.name'], 'rerank');
    assert.equal(a['openinference.span.kind'], 'RERANKER');
    assert.equal(a['reranker.query'], query);
    assert.equal(a['reranker.top_k'], 2);
    assert.match(String(a['reranker.model_name']), /tiny-ce/);
    assert.ok(Object.keys(a).some((k) => k.startsWith('reranker.output_documents.0.')));
    assert.ok(!Object.keys(a).some((k) => k.includes('document.content')), 'document texts stay out of traces by default');
    const resource = Object.fromEntries(span.resource.attributes.map((x: any) => [x.key, x.value.stringValue]));
    assert.equal(resource['service.name'], 'rerank-ops-test');
    const children = receiver.spans().filter((s) => s.parentSpanId === span.spanId).map((s) => s.name).sort();
    assert.deepEqual(children, ['inference', 'queue', 'store write', 'tokenization']);

    const rest = find('POST /v1/rerank');
    assert.equal(hex(rest.parentSpanId), restParent);
    assert.equal(attrs(rest)['http.route'], '/v1/rerank');
    assert.equal(attrs(rest)['http.response.status_code'], 200);
    assert.equal(attrs(rest)['reranker.top_k'], 1);
    assert.equal(attrs(rest)['rerank_mcp.request_id'], res.headers.get('x-request-id'));

    // A line logged deep inside a call (the rerank log refusing 1.1 MiB of text) names the call's id, in the text format too.
    const big = Array.from({ length: 11 }, (_, i) => `${'x'.repeat(99_990)} ${i}`);
    const logged = await fetch(`${new URL(traced.url).origin}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'ops-in-call' }, body: JSON.stringify({ query: 'q', documents: big }) });
    assert.equal(logged.status, 200);
    assert.match(traced.stderr(), /^\[rerank-mcp\] rerank call of 1\.\d MiB of text not logged.* \[request ops-in-call\]$/m);
  } finally {
    await traced.stop();
    await receiver.close();
  }
});

test('the shared daemon serves the metrics of all its clients', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rerank-ops-daemons-'));
  const port = await freePort();
  const env = { RERANK_DAEMON_DIR: dir, RERANK_FEEDBACK_DB: freshDbPath() };
  const args = ['--model', TINY_CE, '--metrics-port', String(port)];
  const a = await connectStdio(args, env);
  const b = await connectStdio(args, env);
  try {
    for (const client of [a.client, b.client, a.client]) {
      const result = (await client.callTool({ name: 'rerank', arguments: { query: freshQuery(), documents } })) as ToolResult;
      assert.ok(!result.isError);
    }
    const samples = await scrape(`http://127.0.0.1:${port}/metrics`);
    assert.equal(sumOf(samples, 'te_request_count', (s) => s.includes('transport="daemon"')), 3);
    assert.equal(sumOf(samples, 'rerank_mcp_daemon_clients'), 2);
  } finally {
    await a.close();
    await b.close();
    stopDaemons(dir);
  }
});
