/**
 * The REST face driven by the RAG clients people plug in: the real npm libraries (cohere-ai v1
 * and v2 clients, the AI SDK's rerank() with @ai-sdk/cohere, LangChain.js CohereRerank), and
 * byte-for-byte replays of the requests of clients that cannot be installed here
 * (test/fixtures/rest-replays.json, each with the source it was rebuilt from). Every answer is
 * checked against the server's own /v1/rerank ranking of the same texts, on what each client
 * reads from it. @llamaindex/cohere is not driven: its peer @llamaindex/env wants
 * @huggingface/transformers 3 and this project has 4, so it does not install cleanly.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CohereClient, CohereClientV2, CohereError } from 'cohere-ai';
import { rerank } from 'ai';
import { createCohere } from '@ai-sdk/cohere';
import { CohereRerank } from '@langchain/cohere';
import { Document } from '@langchain/core/documents';
import { REPO_ROOT, TINY_CE, readParity, type TinyParity } from './helpers/fixtures.js';
import { startHttpServer, type HttpServerProcess } from './helpers/mcp.js';

const TOKEN = 'rest-clients-token-0123456789abcdef';
const tiny = readParity<TinyParity>('tiny-ce.json');
const { query, documents } = tiny.st_rank;

interface Expect {
  shape: 'cohere' | 'tei' | 'tei-info';
  top_n?: number;
  all?: boolean;
  document_text?: boolean;
  document_object?: boolean;
  no_documents?: boolean;
  text?: boolean;
  usage?: boolean;
}
interface Replay {
  client: string;
  source: string;
  base_url: string;
  requests: { method: string; path: string; headers: Record<string, string>; body?: string; expect: Expect }[];
}
const replays = (JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'rest-replays.json'), 'utf8')) as { replays: Replay[] }).replays;

let server: HttpServerProcess;
let base: string;
before(async () => {
  server = await startHttpServer(['--model', TINY_CE], { RERANK_MCP_TOKEN: TOKEN });
  base = new URL(server.url).origin;
});
after(() => server.stop());

/** The server's own answer: index → relevance_score for every document, best first. */
async function own(q: string, texts: string[]): Promise<{ index: number; relevance_score: number }[]> {
  const res = await fetch(`${base}/v1/rerank`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ query: q, documents: texts, return_documents: false }) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { results: { index: number; relevance_score: number }[] }).results;
}

test('clients: cohere-ai v1 client: strings, then objects with rankFields (original object back), X-Rerank-Id, errors in body.message', async () => {
  const client = new CohereClient({ token: TOKEN, environment: base });
  const reference = await own(query, documents);
  const plain = await client.rerank({ model: 'rerank-english-v3.0', query, documents, topN: 3, returnDocuments: true });
  assert.deepEqual(plain.results.map((r) => r.index), reference.slice(0, 3).map((r) => r.index));
  plain.results.forEach((r, i) => assert.equal(r.relevanceScore, reference[i].relevance_score));
  assert.equal(plain.results[0].document?.text, documents[plain.results[0].index]);

  const objects = documents.map((body, i) => ({ title: `doc ${i}`, body }));
  const fields = await client.rerank({ model: 'rerank-english-v3.0', query, documents: objects, rankFields: ['body'], returnDocuments: true }).withRawResponse();
  const joined = await own(query, documents.map((d) => `body: ${d}`));
  assert.deepEqual(fields.data.results.map((r) => r.index), joined.map((r) => r.index));
  fields.data.results.forEach((r, i) => assert.equal(r.relevanceScore, joined[i].relevance_score));
  assert.deepEqual(fields.data.results[0].document, objects[fields.data.results[0].index], 'the object comes back with its other fields');
  assert.equal(fields.rawResponse.headers.get('x-rerank-id'), fields.data.id, 'the rerank_id in a header too');

  await assert.rejects(client.rerank({ query, documents: Array.from({ length: 1001 }, () => 'a') }), (err: CohereError) => {
    assert.equal(err.statusCode, 400);
    assert.match((err.body as { message: string }).message, /documents is limited to 1000/);
    return true;
  });
});

test('clients: cohere-ai v2 client: ranking equals the server\'s, wrong token and top_n 0 refused with a readable body.message', async () => {
  const client = new CohereClientV2({ token: TOKEN, environment: base });
  const reference = await own(query, documents);
  const res = await client.rerank({ model: 'rerank-v3.5', query, documents, topN: 2, maxTokensPerDoc: 4096 }).withRawResponse();
  assert.deepEqual(res.data.results.map((r) => r.index), reference.slice(0, 2).map((r) => r.index));
  res.data.results.forEach((r, i) => assert.equal(r.relevanceScore, reference[i].relevance_score));
  assert.ok(res.data.results.every((r) => !('document' in r) || r.document === undefined));
  assert.equal(res.rawResponse.headers.get('x-rerank-id'), res.data.id);

  const wrong = new CohereClientV2({ token: 'wrong-token-wrong-token', environment: base });
  await assert.rejects(wrong.rerank({ model: 'rerank-v3.5', query, documents }), (err: CohereError) => {
    assert.equal(err.statusCode, 401);
    assert.match((err.body as { message: string }).message, /bearer token/);
    return true;
  });
  await assert.rejects(client.rerank({ model: 'rerank-v3.5', query, documents, topN: 0 }), (err: CohereError) => {
    assert.equal(err.statusCode, 400);
    assert.match((err.body as { message: string }).message, /top_n must be at least 1/);
    return true;
  });
  // A base URL ending in /v1 (a common mistake): the 404 says which part to drop.
  const slashV1 = new CohereClientV2({ token: TOKEN, environment: `${base}/v1` });
  await assert.rejects(slashV1.rerank({ model: 'rerank-v3.5', query, documents }), (err: CohereError) => {
    assert.equal(err.statusCode, 404);
    assert.match((err.body as { message: string }).message, /base URL should not end in \/v1/);
    return true;
  });
});

test('clients: AI SDK rerank() with @ai-sdk/cohere: ranking equals the server\'s, and the error shown is ours, not "Bad Request"', async () => {
  const cohere = createCohere({ apiKey: TOKEN, baseURL: `${base}/v2` });
  const reference = await own(query, documents);
  const result = await rerank({ model: cohere.reranking('rerank-v3.5'), query, documents, topN: 3 });
  assert.deepEqual(result.ranking.map((r) => r.originalIndex), reference.slice(0, 3).map((r) => r.index));
  result.ranking.forEach((r, i) => assert.equal(r.score, reference[i].relevance_score));

  await assert.rejects(rerank({ model: cohere.reranking('rerank-v3.5'), query: 'q'.repeat(100_001), documents, maxRetries: 0 }), (err: Error) => {
    assert.match(err.message, /query is limited to 100000 characters/);
    return true;
  });
  const wrong = createCohere({ apiKey: 'wrong-token-wrong-token', baseURL: `${base}/v2` });
  await assert.rejects(rerank({ model: wrong.reranking('rerank-v3.5'), query, documents, maxRetries: 0 }), (err: Error) => {
    assert.match(err.message, /missing or wrong bearer token/);
    return true;
  });
});

test('clients: LangChain.js CohereRerank: compressDocuments keeps the best topN with the server\'s scores; errors carry our message', async () => {
  const reranker = new CohereRerank({ model: 'rerank-english-v3.0', topN: 3, client: new CohereClient({ token: TOKEN, environment: base }) });
  const reference = await own(query, documents);
  const docs = documents.map((pageContent, i) => new Document({ pageContent, metadata: { i } }));
  const kept = await reranker.compressDocuments(docs, query);
  assert.deepEqual(kept.map((d) => d.metadata.i), reference.slice(0, 3).map((r) => r.index));
  kept.forEach((d, i) => assert.equal(d.metadata.relevanceScore, reference[i].relevance_score));
  const ranked = await reranker.rerank(documents, query, { topN: documents.length });
  assert.deepEqual(ranked, reference.map((r) => ({ index: r.index, relevanceScore: r.relevance_score })));

  const tooLong = new CohereRerank({ model: 'rerank-english-v3.0', client: new CohereClient({ token: TOKEN, environment: base }) });
  await assert.rejects(tooLong.compressDocuments([new Document({ pageContent: 'x'.repeat(100_001) })], query), (err: CohereError) => {
    assert.match((err.body as { message: string }).message, /a document is limited to 100000 characters/);
    return true;
  });
});

/** What the replayed client reads from the answer, checked against the server's own ranking. */
async function checkReplay(replay: Replay, request: Replay['requests'][number], status: number, json: any): Promise<void> {
  const what = `${replay.client}: ${request.method} ${request.path}`;
  assert.equal(status, 200, `${what}: ${JSON.stringify(json)}`);
  const { expect } = request;
  if (expect.shape === 'tei-info') {
    assert.equal(Object.keys(json.model_type)[0], 'reranker', what);
    assert.ok(Number.isInteger(json.max_input_length) && json.max_input_length > 0, what);
    assert.ok(Number.isInteger(json.max_client_batch_size) && json.max_client_batch_size > 0, what);
    return;
  }
  const sent = JSON.parse(request.body!);
  const docs: unknown[] = sent.documents ?? sent.texts;
  const texts = docs.map((d) => (typeof d === 'string' ? d : (sent.rank_fields as string[]).map((f) => `${f}: ${(d as Record<string, string>)[f]}`).join('\n')));
  const reference = await own(sent.query, texts);
  if (expect.shape === 'tei') {
    assert.ok(Array.isArray(json), what);
    assert.deepEqual(json.map((r: { index: number }) => r.index), reference.map((r) => r.index), what);
    json.forEach((r: { score: number; text?: string; index: number }, i: number) => {
      assert.equal(r.score, reference[i].relevance_score, what);
      if (expect.text) assert.equal(r.text, texts[r.index], what);
    });
    return;
  }
  const results = json.results as { index: number; relevance_score: number; document?: any }[];
  const expected = expect.top_n ? reference.slice(0, expect.top_n) : reference;
  assert.deepEqual(results.map((r) => r.index), expected.map((r) => r.index), what);
  results.forEach((r, i) => {
    assert.equal(r.relevance_score, expected[i].relevance_score, what);
    if (expect.document_text) assert.equal(r.document.text, docs[r.index], what);
    if (expect.document_object) assert.deepEqual(r.document, docs[r.index], what);
    if (expect.no_documents) assert.equal(r.document, undefined, what);
  });
  // Open WebUI and rerankers sort by index and take one score per document.
  if (expect.all) assert.deepEqual([...results].sort((a, b) => a.index - b.index).map((r) => r.index), docs.map((_, i) => i), what);
  if (expect.usage) assert.ok(json.usage.total_tokens >= 0, what);
}

for (const replay of replays) {
  test(`replay: ${replay.client}`, async () => {
    for (const request of replay.requests) {
      const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, v.replace('TOKEN', TOKEN)]));
      const res = await fetch(`${base}${request.path}`, { method: request.method, headers, body: request.body });
      const text = await res.text();
      await checkReplay(replay, request, res.status, text ? JSON.parse(text) : undefined);
      assert.ok(request.path === '/info' || res.headers.get('x-rerank-id'), `${replay.client}: X-Rerank-Id`);
    }
  });
}
