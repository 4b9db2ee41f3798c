/**
 * deadline_ms on rerank and the server's --max-call-ms: a call on a model too slow for its
 * documents answers by the deadline with what is scored (ranked best first, with the scores a
 * full call gives), the rest after them in input order flagged scored: false, complete: false;
 * progress keeps flowing; the same over MCP and REST, and in the engine with maxCallMs.
 *
 * The slow model: the MiniLM-L6-shaped fixture (a real 22M-parameter BERT) on 400 documents of
 * ~130 tokens, tens of seconds of work on this machine; the deadlines are a fraction of that.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackedMiniLm } from './helpers/fixtures.js';
import { connectHttp, startHttpServer, type HttpServerProcess } from './helpers/mcp.js';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { DEFAULT_ENGINE_OPTIONS, ScoringEngine } from '../src/engine/scoring-engine.js';

const WORDS = 'function returns value error parser token buffer index stream module import export class method async await promise retry timeout socket handler'.split(' ');
let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
/** ~130 tokens of distinct text per document (deterministic). */
const documents = Array.from({ length: 400 }, () => Array.from({ length: 120 }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' '));
const query = 'which handler retries the socket after a timeout error';
const DEADLINE = 3000;
/** The answer is sent by a timer at the deadline; the margin is for a loaded shared machine (2 cores, many processes). */
const MARGIN = 1500;

interface Result {
  index: number;
  score?: number;
  logit?: number;
  scored?: false;
}

/** Scored ones best first, then the unscored in input order; returns the scored ones. */
function checkShape(results: Result[], scoreOf: (r: Result) => number | null | undefined): Result[] {
  assert.equal(results.length, documents.length, 'every document is in the answer');
  const scored = results.filter((r) => r.scored !== false);
  const unscored = results.filter((r) => r.scored === false);
  assert.ok(scored.length >= 1, 'something was scored before the deadline');
  console.log(`# ${scored.length} of ${results.length} scored by the deadline`);
  assert.ok(unscored.length >= 1, `a deadline of ${DEADLINE} ms cannot score all ${documents.length} documents on this model`);
  assert.deepEqual(results.slice(0, scored.length), scored, 'scored results come first');
  for (let i = 1; i < scored.length; i++) assert.ok(scoreOf(scored[i - 1])! >= scoreOf(scored[i])!, 'scored results are best first');
  const unscoredIdx = unscored.map((r) => r.index);
  assert.deepEqual(unscoredIdx, [...unscoredIdx].sort((a, b) => a - b), 'unscored results keep input order');
  for (const r of unscored) assert.equal(scoreOf(r) ?? null, null, 'an unscored result has no score');
  return scored;
}

let server: HttpServerProcess;
let base: string;
before(async () => {
  // No score cache: the full call below must score again, not read what the deadline call scored.
  server = await startHttpServer(['--model', unpackedMiniLm(), '--cache-size', '0']);
  base = new URL(server.url).origin;
});
after(() => server.stop());

test('deadline_ms over MCP: answered by the deadline, scored ones ranked with a full call\'s scores, the rest flagged, progress flowing', async () => {
  const client = await connectHttp(server.url);
  try {
    // Warm the model up (first-run allocations) so the deadline measures scoring.
    await client.callTool({ name: 'rerank', arguments: { query, documents: documents.slice(0, 2) } });
    let progress = 0;
    const started = performance.now();
    const res = (await client.callTool({ name: 'rerank', arguments: { query, documents, deadline_ms: DEADLINE, return_documents: false } }, undefined, { onprogress: () => progress++ })) as {
      structuredContent: { complete: boolean; results: Result[] };
    };
    const elapsed = performance.now() - started;
    assert.ok(elapsed <= DEADLINE + MARGIN, `answered after ${elapsed.toFixed(0)} ms, deadline ${DEADLINE} ms`);
    assert.equal(res.structuredContent.complete, false);
    const scored = checkShape(res.structuredContent.results, (r) => r.score);
    assert.ok(progress >= 1, 'progress notifications flowed before the deadline');

    // The same documents in a call with no deadline: the same scores, so the same order.
    const full = (await client.callTool({ name: 'rerank', arguments: { query, documents: scored.map((r) => documents[r.index]), return_documents: false } })) as {
      structuredContent: { complete: boolean; results: Result[] };
    };
    assert.equal(full.structuredContent.complete, true);
    const fullLogit = new Map(full.structuredContent.results.map((r) => [scored[r.index].index, r.logit!]));
    for (const r of scored) assert.ok(Math.abs(r.logit! - fullLogit.get(r.index)!) <= 1e-4, `document ${r.index}: ${r.logit} under the deadline, ${fullLogit.get(r.index)} in a full call`);
  } finally {
    await client.close();
  }
});

test('deadline_ms over REST: Cohere/Jina body says complete: false with null scores flagged; TEI says it in X-Rerank-Complete', async () => {
  for (const [path, body, scoreOf] of [
    ['/v1/rerank', { query, documents, deadline_ms: DEADLINE }, (r: { relevance_score?: number | null }) => r.relevance_score],
    ['/rerank', { query, texts: documents, deadline_ms: DEADLINE }, (r: { score?: number | null }) => r.score],
  ] as const) {
    const started = performance.now();
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const elapsed = performance.now() - started;
    const json = await res.json();
    assert.equal(res.status, 200, JSON.stringify(json));
    assert.ok(elapsed <= DEADLINE + MARGIN, `${path} answered after ${elapsed.toFixed(0)} ms, deadline ${DEADLINE} ms`);
    assert.equal(res.headers.get('x-rerank-complete'), 'false');
    const results = path === '/rerank' ? json : json.results;
    if (path !== '/rerank') assert.equal(json.complete, false);
    checkShape(results, scoreOf as (r: Result) => number | null | undefined);
  }
});

test('the engine: maxCallMs bounds calls without a deadline; a call that fits in it is complete', async () => {
  const model = await CrossEncoder.load({ model: unpackedMiniLm(), variant: 'fp32' });
  try {
    const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, maxCallMs: DEADLINE });
    await engine.rerank(query, documents.slice(0, 2));
    const started = performance.now();
    const ranked = await engine.rerank(query, documents);
    const elapsed = performance.now() - started;
    assert.ok(elapsed <= DEADLINE + MARGIN, `answered after ${elapsed.toFixed(0)} ms`);
    checkShape(ranked, (r) => (r.scored === false ? null : r.score));
    const small = await engine.rerank(query, documents.slice(2, 4), { deadlineMs: 60_000 });
    assert.ok(small.every((r) => r.scored !== false && Number.isFinite(r.score)));
  } finally {
    await model.release();
  }
});
