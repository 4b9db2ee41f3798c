/**
 * The REST face against the built server: the request and response shapes that Cohere, Jina
 * and TEI clients use, scores checked against the PyTorch/sentence-transformers reference and
 * against the MCP rerank tool on the same server, the token, the body and call limits.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO_ROOT, TINY_CE, readParity, type TinyParity } from './helpers/fixtures.js';
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

test('rest: null in any optional field is taken as absent, on every rerank route', async () => {
  const cohere = { query, documents, model: null, top_n: null, return_documents: null, max_tokens_per_doc: null, rank_fields: null, instruction: null };
  for (const path of ['/v1/rerank', '/v2/rerank']) {
    const res = await post(path, cohere);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.json)}`);
    assert.deepEqual(res.json.results.map((r: { index: number }) => r.index), reference.map((r) => r.corpus_id));
    assert.equal('document' in res.json.results[0], path === '/v1/rerank', `${path}: null return_documents keeps the route's default`);
  }
  const tei = await post('/rerank', { query, texts: documents, raw_scores: null, return_text: null, truncate: null, truncation_direction: null });
  assert.equal(tei.status, 200, JSON.stringify(tei.json));
  assert.ok(Math.abs(tei.json[0].score - sigmoid(reference[0].score)) < 1e-5, 'null raw_scores: probabilities');
  assert.ok(!('text' in tei.json[0]));
  // A required field that is null is still refused, naming it.
  const noQuery = await post('/v1/rerank', { query: null, documents });
  assert.equal(noQuery.status, 400);
  assert.match(noQuery.json.message, /query is required/);
});

test('rest: top_n as Cohere\'s schema has it: 0 and negatives refused (minimum 1), more than the documents gives them all', async () => {
  for (const top_n of [0, -1]) {
    const res = await post('/v1/rerank', { query, documents, top_n });
    assert.equal(res.status, 400);
    assert.match(res.json.message, /top_n must be at least 1/);
  }
  const huge = await post('/v2/rerank', { query, documents, top_n: 2 ** 40 });
  assert.equal(huge.json.results.length, documents.length);
});

test('rest: rank_fields ranks objects on the named fields ("field: value" lines, in order) and returns the object as sent', async () => {
  const objects = documents.map((d, i) => ({ id: `d${i}`, title: `title ${i}`, body: d, extra: { n: i } }));
  const ranked = await post('/v1/rerank', { query, documents: objects, rank_fields: ['title', 'body'] });
  assert.equal(ranked.status, 200, JSON.stringify(ranked.json));
  const same = await post('/v1/rerank', { query, documents: objects.map((o) => `title: ${o.title}\nbody: ${o.body}`) });
  assert.deepEqual(ranked.json.results.map((r: { index: number }) => r.index), same.json.results.map((r: { index: number }) => r.index));
  ranked.json.results.forEach((r: { relevance_score: number; document: object; index: number }, i: number) => {
    assert.equal(r.relevance_score, same.json.results[i].relevance_score);
    assert.deepEqual(r.document, objects[r.index]);
  });
  // With text present, rank_fields still decides what is ranked.
  const withText = await post('/v1/rerank', { query, documents: objects.map((o) => ({ ...o, text: 'unrelated' })), rank_fields: ['body'] });
  const bodies = await post('/v1/rerank', { query, documents: objects.map((o) => `body: ${o.body}`) });
  assert.deepEqual(withText.json.results.map((r: { relevance_score: number }) => r.relevance_score), bodies.json.results.map((r: { relevance_score: number }) => r.relevance_score));
  const noText = await post('/v1/rerank', { query, documents: [{ title: 'a' }] });
  assert.equal(noText.status, 400);
  assert.match(noText.json.message, /documents\.0: an object needs a text field, or name the fields to rank on in rank_fields/);
  const missing = await post('/v1/rerank', { query, documents: [{ title: 'a' }], rank_fields: ['body'] });
  assert.equal(missing.status, 400);
  assert.match(missing.json.message, /documents\.0: has none of the rank_fields \(body\)/);
});

test('rest: GET /info in TEI\'s shape, behind the token', async () => {
  const res = await fetch(`${base}/info`, { headers: auth });
  assert.equal(res.status, 200);
  const info = (await res.json()) as any;
  assert.deepEqual(Object.keys(info.model_type), ['reranker']);
  assert.equal(typeof info.model_type.reranker.id2label, 'object');
  assert.equal(typeof info.model_type.reranker.label2id, 'object');
  assert.equal(typeof info.model_id, 'string');
  assert.equal(info.model_dtype, 'float32');
  assert.ok(info.max_input_length > 0);
  assert.equal(info.max_client_batch_size, 1000);
  for (const key of ['model_sha', 'max_concurrent_requests', 'max_batch_tokens', 'max_batch_requests', 'tokenization_workers', 'auto_truncate', 'version', 'sha', 'docker_label']) assert.ok(key in info, key);
  const anon = await fetch(`${base}/info`);
  assert.equal(anon.status, 401);
  assert.deepEqual(Object.keys((await anon.json()) as object).sort(), ['error', 'error_type']);
});

test('rest: error shapes per family, 404 JSON naming the base URL, 405 with the path, 415 for a body that is not JSON, X-Rerank-Id', async () => {
  const cohere = await post('/v2/rerank', { query });
  assert.equal(cohere.status, 400);
  assert.match(cohere.json.message, /documents is required/);
  assert.equal(cohere.json.error.message, cohere.json.message);
  const tei = await post('/rerank', { query });
  assert.equal(tei.status, 400);
  assert.deepEqual(tei.json, { error: 'texts: texts is required', error_type: 'Validation' });

  const nested = await post('/v1/v2/rerank', { query, documents });
  assert.equal(nested.status, 404);
  assert.match(nested.headers.get('content-type') ?? '', /application\/json/);
  assert.match(nested.json.message, /base URL should not end in \/v1/);
  const unknown = await post('/v1/embed', { query });
  assert.equal(unknown.status, 404);
  assert.match(unknown.json.message, /POST \/v1\/rerank/);

  const get = await fetch(`${base}/v1/rerank`, { headers: auth });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
  assert.match(((await get.json()) as { message: string }).message, /GET is not allowed on \/v1\/rerank/);

  const form = await fetch(`${base}/v1/rerank`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: 'query=a&documents=b' });
  assert.equal(form.status, 415);
  assert.match(((await form.json()) as { message: string }).message, /application\/x-www-form-urlencoded.*Content-Type: application\/json/);

  const labeled = await post('/rerank', { query, texts: documents });
  const id = labeled.headers.get('x-rerank-id');
  assert.ok(id, 'TEI answers carry the rerank_id in a header');
  const feedback = await post('/v1/feedback', { rerank_id: id, relevant: [labeled.json[0].index] });
  assert.equal(feedback.status, 200, JSON.stringify(feedback.json));
  const v1 = await post('/v1/rerank', { query, documents });
  assert.equal(v1.headers.get('x-rerank-id'), v1.json.id);
});

test('rest: a foreign Origin is refused in the route family\'s shape; the same on /mcp keeps the transport\'s', async () => {
  const res = await post('/v1/rerank', { query, documents }, { ...auth, origin: 'https://evil.example' });
  assert.equal(res.status, 403);
  assert.match(res.json.message, /Origin https:\/\/evil\.example is not allowed/);
  const tei = await post('/rerank', { query, texts: documents }, { ...auth, origin: 'https://evil.example' });
  assert.equal(tei.status, 403);
  assert.equal(tei.json.error_type, 'Validation');
  const mcp = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'ping' }, { ...auth, origin: 'https://evil.example' });
  assert.equal(mcp.status, 403);
  assert.match(mcp.json.error, /Origin https:\/\/evil\.example is not allowed/);
});

test('rest: --cors-origins: preflight answered without the token, the call still needs it, other origins get no CORS', async () => {
  const page = 'http://app.test:3000';
  const s = await startHttpServer(['--model', TINY_CE, '--cors-origins', `${page}, https://other.test`], { RERANK_MCP_TOKEN: TOKEN });
  try {
    const origin = new URL(s.url).origin;
    const preflight = await fetch(`${origin}/v1/rerank`, { method: 'OPTIONS', headers: { origin: page, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-fern-language' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), page);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/);
    const call = await fetch(`${origin}/v1/rerank`, { method: 'POST', headers: { ...auth, origin: page, 'content-type': 'application/json' }, body: JSON.stringify({ query, documents }) });
    assert.equal(call.status, 200);
    assert.equal(call.headers.get('access-control-allow-origin'), page);
    assert.match(call.headers.get('access-control-expose-headers') ?? '', /X-Rerank-Id/);
    const anon = await fetch(`${origin}/v1/rerank`, { method: 'POST', headers: { origin: page, 'content-type': 'application/json' }, body: JSON.stringify({ query, documents }) });
    assert.equal(anon.status, 401, 'CORS does not replace the token');
    assert.equal(anon.headers.get('access-control-allow-origin'), page, 'the page can read why');
    const foreign = await fetch(`${origin}/v1/rerank`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  } finally {
    await s.stop();
  }
  // Off by default: no CORS headers for any origin.
  const none = await fetch(`${base}/v1/rerank`, { method: 'OPTIONS', headers: { origin: page, 'access-control-request-method': 'POST' } });
  assert.equal(none.headers.get('access-control-allow-origin'), null);
});

test('rest: instruction is taken on every rerank route and changes the score of a decoder reranker as the MCP tool does', async () => {
  const s = await startHttpServer(['--model', join(REPO_ROOT, 'test', 'fixtures', 'qwen3-tiny')]);
  try {
    const origin = new URL(s.url).origin;
    const call = async (path: string, body: object) => {
      const res = await fetch(`${origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const json = (await res.json()) as any;
      assert.equal(res.status, 200, JSON.stringify(json));
      return json;
    };
    const instruction = 'Given a code question, retrieve the function that answers it';
    const plain = await call('/v1/rerank', { query: 'sort a list', documents: ['def sort(xs): ...', 'README'] });
    const told = await call('/v1/rerank', { query: 'sort a list', documents: ['def sort(xs): ...', 'README'], instruction });
    const tei = await call('/rerank', { query: 'sort a list', texts: ['def sort(xs): ...', 'README'], instruction, raw_scores: true });
    assert.notEqual(told.results[0].relevance_score, plain.results[0].relevance_score);
    const client = await connectHttp(s.url);
    try {
      const tool = (await client.callTool({ name: 'rerank', arguments: { query: 'sort a list', documents: ['def sort(xs): ...', 'README'], instruction } })) as { structuredContent: { results: { index: number; logit: number }[] } };
      assert.deepEqual(tei.map((r: { index: number; score: number }) => [r.index, r.score]), tool.structuredContent.results.map((r) => [r.index, r.logit]));
      told.results.forEach((r: { relevance_score: number }, i: number) => assert.equal(r.relevance_score, sigmoid(tool.structuredContent.results[i].logit)));
    } finally {
      await client.close();
    }
  } finally {
    await s.stop();
  }
});
