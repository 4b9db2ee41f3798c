/**
 * The REST face against the built server: the request and response shapes that Cohere, Jina
 * and TEI clients use, scores checked against the PyTorch/sentence-transformers reference and
 * against the MCP rerank tool on the same server, the token, the body and call limits.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TINY_CE, readParity, type TinyParity } from './helpers/fixtures.js';
import { connectHttp, startHttpServer, type HttpServerProcess } from './helpers/mcp.js';

const TOKEN = 'rest-test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
const tiny = readParity<TinyParity>('tiny-ce.json');
const { query, documents } = tiny.st_rank;
/** sentence-transformers' CrossEncoder.rank on this query: best first, raw logits (tiny-ce's activation is identity). */
const reference = tiny.st_rank.result;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

let server: HttpServerProcess;
let base: string;
before(async () => {
  server = await startHttpServer(['--model', TINY_CE, '--max-body-mb', '1', '--max-call-tokens', '20000'], { RERANK_MCP_TOKEN: TOKEN });
  base = new URL(server.url).origin;
});
after(() => server.stop());

async function post(path: string, body: unknown, headers: Record<string, string> = auth): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

test('rest: Cohere/Jina /v1/rerank: sorted, relevance_score = sigmoid(reference logit), documents returned, id labelable', async () => {
  const res = await post('/v1/rerank', { model: 'any', query, documents });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const body = res.json;
  assert.deepEqual(body.results.map((r: { index: number }) => r.index), reference.map((r) => r.corpus_id));
  for (const [i, r] of body.results.entries()) {
    assert.ok(Math.abs(r.relevance_score - sigmoid(reference[i].score)) < 1e-5, `result ${i}: ${r.relevance_score} vs sigmoid(${reference[i].score})`);
    assert.ok(r.relevance_score >= 0 && r.relevance_score <= 1);
    assert.equal(r.document.text, documents[r.index]);
  }
  assert.equal(typeof body.id, 'string');
  assert.equal(typeof body.model, 'string');
  assert.ok(body.usage.total_tokens > 0, 'first call: every pair went to the model');
  assert.equal(body.meta.api_version.version, '1');
  // The id is a rerank_id: the REST feedback route labels by it.
  const labeled = await post('/v1/feedback', { rerank_id: body.id, relevant: [body.results[0].index], irrelevant: [body.results.at(-1).index] });
  assert.equal(labeled.status, 200, JSON.stringify(labeled.json));
  assert.equal(labeled.json.stored, 2);
});

test('rest: Jina documents as objects with return_documents and top_n; Cohere v2 returns no documents unless asked', async () => {
  const objects = documents.map((text, i) => ({ text, title: `doc ${i}` }));
  const jina = await post('/v1/rerank', { model: 'jina-reranker-v2-base-multilingual', query, documents: objects, top_n: 3, return_documents: true });
  assert.equal(jina.status, 200, JSON.stringify(jina.json));
  assert.deepEqual(jina.json.results.map((r: { index: number }) => r.index), reference.slice(0, 3).map((r) => r.corpus_id));
  assert.deepEqual(jina.json.results[0].document, objects[reference[0].corpus_id], 'the object comes back as sent');
  const noDocs = await post('/v1/rerank', { query, documents, return_documents: false });
  assert.ok(noDocs.json.results.every((r: object) => !('document' in r)));
  const v2 = await post('/v2/rerank', { model: 'rerank-v3.5', query, documents, top_n: 2, max_tokens_per_doc: 4096 });
  assert.equal(v2.status, 200, JSON.stringify(v2.json));
  assert.equal(v2.json.meta.api_version.version, '2');
  assert.equal(v2.json.results.length, 2);
  assert.ok(v2.json.results.every((r: object) => !('document' in r)));
  // Repeated pairs come from the score cache: no tokens sent to the model.
  assert.equal(v2.json.usage.total_tokens, 0);
});

test('rest: TEI /rerank: sorted [{index, score, text?}], raw_scores gives the logits', async () => {
  const probs = await post('/rerank', { query, texts: documents, return_text: true });
  assert.equal(probs.status, 200, JSON.stringify(probs.json));
  assert.ok(Array.isArray(probs.json));
  assert.deepEqual(probs.json.map((r: { index: number }) => r.index), reference.map((r) => r.corpus_id));
  assert.equal(probs.json[0].text, documents[probs.json[0].index]);
  const raw = await post('/rerank', { query, texts: documents, raw_scores: true, truncate: true });
  for (const [i, r] of raw.json.entries()) {
    assert.ok(Math.abs(r.score - reference[i].score) < 1e-5, `raw score ${r.score} vs ${reference[i].score}`);
    assert.ok(!('text' in r));
  }
});

test('rest: ordering and scores equal the MCP rerank tool on the same server', async () => {
  const client = await connectHttp(server.url, auth);
  try {
    const texts = tiny.pairs.slice(0, 30).map(([, d]) => d);
    const q = tiny.pairs[0][0];
    const tool = (await client.callTool({ name: 'rerank', arguments: { query: q, documents: texts } })) as { structuredContent: { results: { index: number; logit: number }[] } };
    const rest = await post('/v1/rerank', { query: q, documents: texts });
    assert.deepEqual(rest.json.results.map((r: { index: number }) => r.index), tool.structuredContent.results.map((r) => r.index));
    rest.json.results.forEach((r: { relevance_score: number }, i: number) => assert.equal(r.relevance_score, sigmoid(tool.structuredContent.results[i].logit)));
  } finally {
    await client.close();
  }
});

/** The message of an error in either family's shape: Cohere/Jina {message, error: {message}}, TEI {error, error_type}. */
const messageOf = (json: any): string => (typeof json.error === 'string' ? json.error : json.message);

test('rest: 401 without the token, on every route, in the route family\'s error shape', async () => {
  for (const path of ['/v1/rerank', '/v2/rerank', '/rerank', '/v1/feedback']) {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }]) {
      const res = await post(path, { query, documents, texts: documents }, headers);
      assert.equal(res.status, 401, path);
      assert.match(messageOf(res.json), /bearer token/);
      assert.match(res.headers.get('www-authenticate') ?? '', /Bearer/);
    }
  }
});

test('rest: 413 for a body over --max-body-mb and for a call over --max-call-tokens; 400 for invalid input', async () => {
  const big = await post('/v1/rerank', { query, documents: Array.from({ length: 20 }, () => 'x '.repeat(45_000)) });
  assert.equal(big.status, 413);
  assert.match(big.json.error.message, /--max-body-mb/);
  const many = await post('/v1/rerank', { query, documents: Array.from({ length: 200 }, (_, i) => `${'word '.repeat(300)} ${i}`) });
  assert.equal(many.status, 413, JSON.stringify(many.json));
  assert.match(many.json.error.message, /--max-call-tokens/);
  const missing = await post('/v1/rerank', { query });
  assert.equal(missing.status, 400);
  assert.match(missing.json.error.message, /documents/);
  const tooMany = await post('/rerank', { query, texts: Array.from({ length: 1001 }, () => 'a') });
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.json.error, /limited to 1000/);
  assert.equal(tooMany.json.error_type, 'Validation');
  const badJson = await post('/v1/rerank', '{"query": ');
  assert.equal(badJson.status, 400);
  assert.ok(badJson.json.error.message);
  const badFeedback = await post('/v1/feedback', { rerank_id: 'no-such-id', relevant: [0] });
  assert.equal(badFeedback.status, 400);
  assert.match(badFeedback.json.error.message, /unknown rerank_id/);
  const getIt = await fetch(`${base}/v1/rerank`, { headers: auth });
  assert.equal(getIt.status, 405);
});
