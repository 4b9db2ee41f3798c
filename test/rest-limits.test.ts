/**
 * The REST face under load: with --max-sessions 1, a second REST call while one runs gets 429
 * with Retry-After; a client that hangs up cancels its call (the engine drops its remaining
 * batches, counted through model_info's batches_run, not timed).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { readParity, TINY_CE, type TinyParity } from './helpers/fixtures.js';
import { connectHttp, startHttpServer, type HttpServerProcess } from './helpers/mcp.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const query = tiny.pairs[0][0];
/** 1000 documents cut to 512 tokens each: hundreds of batches. */
const documents = Array.from({ length: 1000 }, (_, d) => {
  let text = `${d} `;
  for (let i = d; text.length < 4000; i++) text += `${tiny.pairs[i % tiny.pairs.length][1]} `;
  return text;
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const batchesRun = async (client: Client): Promise<number> => ((await client.callTool({ name: 'model_info', arguments: {} })).structuredContent as { batches_run: number }).batches_run;

let server: HttpServerProcess;
before(async () => {
  server = await startHttpServer(['--model', TINY_CE, '--max-call-tokens', '0', '--cache-size', '0', '--max-sessions', '1']);
});
after(() => server.stop());

test('rest: a second call beyond --max-sessions gets 429; hanging up cancels the running call', async () => {
  const observer = await connectHttp(server.url);
  try {
    const base = await batchesRun(observer);
    const controller = new AbortController();
    const large = fetch(new URL('/v1/rerank', server.url), {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, documents }),
    }).catch((err: Error) => err);
    const deadline = Date.now() + 60_000;
    while ((await batchesRun(observer)) === base) {
      assert.ok(Date.now() < deadline, 'the large call never started');
      await sleep(100);
    }
    const second = await fetch(new URL('/rerank', server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, texts: ['a'] }) });
    assert.equal(second.status, 429);
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
    // TEI's error shape: its clients read `error`, and `error_type` Overloaded means "retry".
    const refused = (await second.json()) as { error: string; error_type: string };
    assert.match(refused.error, /--max-sessions/);
    assert.equal(refused.error_type, 'Overloaded');

    controller.abort();
    assert.ok((await large) instanceof Error);
    await sleep(300); // the batch under way when the call was dropped
    const first = await batchesRun(observer);
    await sleep(1000);
    const later = await batchesRun(observer);
    assert.ok(later - first <= 1, `${later - first} batches ran in the second after the client hung up`);
    assert.ok(later - base < 400, `${later - base} of ~500 batches ran for the abandoned call`);
    // The slot is free again.
    const third = await fetch(new URL('/rerank', server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, texts: ['a'] }) });
    assert.equal(third.status, 200);
  } finally {
    await observer.close();
  }
});
