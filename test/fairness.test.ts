/**
 * Fairness and cancellation end to end, through real SDK clients against the built server:
 * a small call from one HTTP session answered within a few batches while another session's
 * large chunked rerank runs; the remaining batches of a call dropped when its HTTP stream
 * closes, when its session is deleted, or when a stdio client cancels; --max-call-tokens
 * refusing an oversized call with isError naming the flag. Progress is counted in batches
 * (model_info's batches_run), not milliseconds, so a slow machine does not change the verdict.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as SdkClient } from '@modelcontextprotocol/sdk/client/index.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { readParity, TINY_CE, type TinyParity } from './helpers/fixtures.js';
import { connectHttp, connectStdio, startHttpServer, type HttpServerProcess } from './helpers/mcp.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const [query, shortDocument] = tiny.pairs[0];

/** `count` documents of `chars` characters each: parity passages end to end. */
function longDocuments(count: number, chars: number): string[] {
  return Array.from({ length: count }, (_, d) => {
    let text = '';
    for (let i = d * 11; text.length < chars; i++) text += `${tiny.pairs[i % tiny.pairs.length][1]} `;
    return text.slice(0, chars);
  });
}
const LARGE = { name: 'rerank', arguments: { query, documents: longDocuments(60, 30_000), long_documents: 'chunk', return_documents: false } };

type Info = { batches_run: number };
const batchesRun = async (client: Client): Promise<number> => ((await client.callTool({ name: 'model_info', arguments: {} })).structuredContent as Info).batches_run;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: HttpServerProcess;
before(async () => {
  server = await startHttpServer(['--model', TINY_CE, '--max-call-tokens', '0', '--cache-size', '0']);
});
after(() => server.stop());

test('http: a small call from one session is answered within a few batches while another session runs a large chunked call', async () => {
  const large = await connectHttp(server.url);
  const small = await connectHttp(server.url);
  try {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let largeDone = false;
    const largeCall = large.callTool(LARGE, undefined, { onprogress: () => started(), timeout: 600_000, resetTimeoutOnProgress: true }).then((r) => {
      largeDone = true;
      return r;
    });
    await running;
    const sent = await batchesRun(small);
    const res = await small.callTool({ name: 'score_pair', arguments: { query, document: shortDocument } });
    const answered = await batchesRun(small);
    assert.ok(!res.isError);
    assert.equal(largeDone, false, 'the large call was still running');
    const largeRes = await largeCall;
    assert.ok(!largeRes.isError);
    const total = await batchesRun(small);
    // The batches counted include those run during the two model_info round trips.
    assert.ok(answered - sent <= 25, `score_pair answered ${answered - sent} batches after it was sent; the large call ran ${total} batches`);
    assert.ok(total - answered >= 100, `the large call still had ${total - answered} batches to run`);
  } finally {
    await Promise.allSettled([large.close(), small.close()]);
  }
});

/** Batches run stop growing: two readings `quietMs` apart differ by at most one batch. */
async function assertStopped(observer: Client, what: string, quietMs = 1000): Promise<number> {
  await sleep(300); // the batch under way when the call was dropped
  const first = await batchesRun(observer);
  await sleep(quietMs);
  const second = await batchesRun(observer);
  assert.ok(second - first <= 1, `${what}: ${second - first} batches ran in ${quietMs} ms after the call was dropped`);
  return second;
}

test('http: closing the POST stream drops the call; so does deleting the session', async () => {
  const observer = await connectHttp(server.url);
  try {
    // A raw POST in a session of its own, read until the first progress event, then abandoned.
    const owner = new SdkClient({ name: 'owner', version: '0' });
    const ownerTransport = new StreamableHTTPClientTransport(new URL(server.url));
    await owner.connect(ownerTransport);
    const base = await batchesRun(observer);
    const controller = new AbortController();
    const res = await fetch(server.url, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': ownerTransport.sessionId!, 'mcp-protocol-version': LATEST_PROTOCOL_VERSION },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { ...LARGE, _meta: { progressToken: 'p' } } }),
    });
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('notifications/progress')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const afterClose = await assertStopped(observer, 'stream closed');
    assert.ok(afterClose - base < 100, `${afterClose - base} batches ran for the abandoned call`);

    // The same call through the SDK, then the session is deleted while it runs.
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const call = owner.callTool(LARGE, undefined, { onprogress: () => started(), timeout: 600_000 }).catch(() => 'closed');
    await running;
    const beforeDelete = await batchesRun(observer);
    await ownerTransport.terminateSession();
    const afterDelete = await assertStopped(observer, 'session deleted');
    assert.ok(afterDelete - beforeDelete < 100, `${afterDelete - beforeDelete} batches ran after the session was deleted`);
    await owner.close();
    await Promise.race([call, sleep(1000)]);
  } finally {
    await observer.close();
  }
});

test('stdio: notifications/cancelled drops the remaining batches; --max-call-tokens refuses a larger call naming the flag', async () => {
  const conn = await connectStdio(['--model', TINY_CE, '--max-call-tokens', '200000', '--cache-size', '0']);
  try {
    const controller = new AbortController();
    // 12 documents chunked: about 100 000 tokens, within the budget.
    const within = { ...LARGE, arguments: { ...LARGE.arguments, documents: longDocuments(12, 30_000) } };
    const call = conn.client.callTool(within, undefined, { signal: controller.signal, onprogress: () => controller.abort(), timeout: 600_000 });
    await assert.rejects(call);
    const stopped = await assertStopped(conn.client, 'stdio cancel');
    assert.ok(stopped < 50, `${stopped} batches ran for the cancelled call`);

    // 60 documents of 30 000 characters, chunked: about 900 000 tokens, over 200 000.
    const res = (await conn.client.callTool(LARGE)) as { isError?: boolean; content: { text: string }[] };
    assert.equal(res.isError, true);
    assert.match(res.content[0].text, /more than 200000 tokens.*--max-call-tokens/);
    assert.equal(await batchesRun(conn.client), stopped, 'the refused call ran no batch');
    // Truncated, the same documents fit: 60 windows of at most 512 tokens.
    const truncated = await conn.client.callTool({ ...LARGE, arguments: { ...LARGE.arguments, long_documents: 'truncate' } });
    assert.ok(!truncated.isError);
  } finally {
    await conn.close();
  }
});
