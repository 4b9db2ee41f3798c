/**
 * The HTTP server under clients that hold its resources: idle connections up to the open-file
 * limit, clients too slow to finish a request, and the largest bodies it accepts arriving at once.
 * Each time, other clients must still be served (a real server process, real sockets).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { TINY_CE } from './helpers/fixtures.js';
import { startHttpServer, type HttpServerProcess } from './helpers/mcp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ready(server: HttpServerProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await fetch(new URL('/readyz', server.url)).catch(() => undefined))?.status !== 200) {
    assert.ok(Date.now() < deadline, `not ready in 60 s: ${server.stderr()}`);
    await sleep(200);
  }
}

/** A small rerank over REST, timed; fails the test on any error. */
async function smallCall(server: HttpServerProcess): Promise<number> {
  const started = performance.now();
  const res = await fetch(new URL('/rerank', server.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'what parses the config', texts: ['the config parser', 'a unit test'] }),
    signal: AbortSignal.timeout(20_000),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(((await res.json()) as unknown[]).length, 2);
  return performance.now() - started;
}

function openSocket(url: string, send?: string): Socket {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname, () => send && socket.write(send));
  socket.on('error', () => undefined);
  socket.resume(); // a paused socket never sees the server's FIN
  return socket;
}

const closedWithin = (socket: Socket, ms: number): Promise<number | undefined> => {
  const started = Date.now();
  return new Promise((resolve) => {
    if (socket.closed) return resolve(0);
    const timer = setTimeout(() => resolve(undefined), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
};

test('http: idle connections up to the open-file limit do not lock other clients out', async () => {
  // 256 descriptors: the default cap leaves 128 of them to the model, workers and database.
  const server = await startHttpServer(['--model', TINY_CE], {}, { fdLimit: 256 });
  const idle: Socket[] = [];
  try {
    await ready(server);
    assert.match(server.stderr(), /at most 128 connections/);
    for (let i = 0; i < 400; i++) idle.push(openSocket(server.url));
    await sleep(1000);
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const health = await fetch(new URL('/healthz', server.url), { signal: AbortSignal.timeout(5000) });
      assert.equal(health.status, 200);
      times.push(await smallCall(server));
    }
    assert.ok(Math.max(...times) < 5000, `small calls took up to ${Math.max(...times).toFixed(0)} ms`);
    // The oldest idle connections made room; the server never ran out of descriptors.
    assert.doesNotMatch(server.stderr(), /EMFILE/);
  } finally {
    for (const socket of idle) socket.destroy();
    await server.stop();
  }
});

test('http: clients that send nothing, half their headers or half their body are disconnected within seconds', async () => {
  const server = await startHttpServer(['--model', TINY_CE]);
  try {
    const silent = openSocket(server.url);
    const halfHeaders = openSocket(server.url, 'POST /rerank HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const halfBody = openSocket(server.url, 'POST /rerank HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"query":');
    const [a, b, c] = await Promise.all([closedWithin(silent, 20_000), closedWithin(halfHeaders, 20_000), closedWithin(halfBody, 20_000)]);
    assert.ok(a !== undefined, 'a connection that sent nothing was still open after 20 s');
    assert.ok(b !== undefined, 'a connection that sent half its headers was still open after 20 s');
    assert.ok(c !== undefined, 'a connection that stopped mid-body was still open after 20 s');
    await smallCall(server);
  } finally {
    await server.stop();
  }
});

let big: HttpServerProcess;
before(async () => {
  big = await startHttpServer(['--model', TINY_CE]);
  await ready(big);
});
after(() => big.stop());

test('http: four 95 MB bodies arriving at once leave small calls answered', async () => {
  for (let i = 0; i < 3; i++) await smallCall(big);
  // One 95 000-character word a document: the tokenizers make one [UNK] of it at once, so the
  // body's parsing and the answer's writing are what is measured, not tokenization.
  const doc = 'x'.repeat(95_000);
  const body = Buffer.from(JSON.stringify({ query: 'what is it', documents: Array.from({ length: 1000 }, (_, i) => `${i} ${doc}`) }));
  assert.ok(body.length > 95e6);
  let done = false;
  const large = Promise.all(
    Array.from({ length: 4 }, async () => {
      const res = await fetch(new URL('/v1/rerank', big.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 200);
      const answer = (await res.json()) as { results: { index: number; document: { text: string } }[] };
      assert.equal(answer.results.length, 1000);
      // The answer streamed in slices is whole: each document's text is back, byte for byte.
      for (const r of answer.results) assert.equal(r.document.text, `${r.index} ${doc}`);
    }),
  ).finally(() => (done = true));
  const times: number[] = [];
  while (!done) times.push(await smallCall(big));
  await large;
  const worst = Math.max(...times);
  console.log(`small calls while 4 x 95 MB bodies arrived: ${times.length}, worst ${worst.toFixed(0)} ms`);
  // The goal is 1 s on an idle machine (39 ms alone); the bound leaves room for a loaded CI. Before
  // bodies were parsed off the loop and answers written in slices: 7.8 s on the same machine.
  assert.ok(worst <= 2000, `a small call took ${worst.toFixed(0)} ms while the large bodies arrived`);
});

test('http: a body of more JSON values than it may hold is refused before it reaches the server thread', async () => {
  const body = JSON.stringify({ query: 'q', documents: ['a'], padding: Array.from({ length: 300_000 }, () => 0) });
  const res = await fetch(new URL('/v1/rerank', big.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.equal(res.status, 413);
  assert.match(JSON.stringify(await res.json()), /more than 200000 JSON values/);
  const mcp = await fetch(new URL('/mcp', big.url), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body });
  assert.equal(mcp.status, 413);
  await smallCall(big);
});
