/**
 * long_documents: "chunk" over MCP on tiny-ce. Words that are one token each make the
 * windows predictable, so the window count and the max-pooling can be checked against
 * score_pair calls on each window's text.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TINY_CE } from './helpers/fixtures.js';
import { connectStdio, type StdioConnection } from './helpers/mcp.js';
import { call } from './helpers/tool-checks.js';

const WORDS = ['apple', 'river', 'stone', 'cloud', 'green', 'table', 'music', 'paper', 'light', 'house', 'water', 'bread', 'chair', 'glass', 'phone', 'train', 'night', 'smile', 'dream', 'ocean'];
const QUERY = 'where is the hybrid search implementation?';
const QUERY_LEN = 7; // where | is | the | hybrid | search | implementation | ?
const BUDGET = 512 - 3;
const OVERLAP = 64;

type Scored = { score: number; logit: number; truncated: boolean; windows: number };
let conn: StdioConnection;

before(async () => {
  conn = await connectStdio(['--model', TINY_CE]);
});
after(() => conn.close());

const scorePair = async (document: string): Promise<Scored> => ((await call(conn.client, 'score_pair', { query: QUERY, document })).structuredContent as { results: Scored[] }).results[0];

test('chunk scores overlapping token windows of a long document and keeps the best', async () => {
  // a deterministic word sequence: 1300 one-token words
  const words = Array.from({ length: 1300 }, (_, i) => WORDS[(i * 7 + (i >> 3)) % WORDS.length]);
  const document = words.join(' ');
  const window = BUDGET - QUERY_LEN;
  const step = window - OVERLAP;
  const starts: number[] = [];
  for (let s = 0; ; s += step) {
    starts.push(s);
    if (s + window >= words.length) break;
  }
  const chunked = ((await call(conn.client, 'score_pair', { query: QUERY, document, long_documents: 'chunk' })).structuredContent as { results: Scored[] }).results[0];
  assert.equal(chunked.windows, starts.length);
  assert.equal(chunked.windows, 3);
  const perWindow = await Promise.all(starts.map((s) => scorePair(words.slice(s, s + window).join(' '))));
  perWindow.forEach((w) => assert.equal(w.truncated, false));
  const best = Math.max(...perWindow.map((w) => w.score));
  assert.ok(Math.abs(chunked.score - best) < 1e-5, `chunk ${chunked.score} vs best window ${best}`);
  const truncated = await scorePair(document);
  assert.equal(truncated.windows, 1);
  assert.equal(truncated.truncated, true);
  assert.ok(Math.abs(truncated.score - perWindow[0].score) < 1e-5, 'truncate scores the first window only');
});

test('a passage after token 600 is found with chunk and missed with truncate', async () => {
  // The random-weight model has no notion of relevance, so "the relevant passage" is the
  // candidate whose window scores highest, and the distractor a document scoring between
  // that window and the filler-only first window that truncate sees.
  const window = BUDGET - QUERY_LEN;
  const step = window - OVERLAP;
  const candidates = Array.from({ length: 40 }, (_, i) => Array.from({ length: 40 }, (_, j) => WORDS[(i * 11 + j * (i + 3)) % WORDS.length]));
  // Which filler leaves room above its first window depends on the weights: try a few.
  let found: { filler: string[]; firstWindow: Scored; best: number; passageWindow: number } | undefined;
  const tried: string[] = [];
  for (const stride of [3, 5, 7, 11, 13, 17, 19, 23]) {
    const filler = Array.from({ length: 650 }, (_, i) => WORDS[(i * stride + stride) % WORDS.length]);
    const firstWindow = await scorePair(filler.slice(0, window).join(' '));
    const secondWindows = await Promise.all(candidates.map((c) => scorePair([...filler, ...c].slice(step).join(' '))));
    const best = secondWindows.reduce((b, s, i) => (s.score > secondWindows[b].score ? i : b), 0);
    tried.push(`${secondWindows[best].score} vs ${firstWindow.score}`);
    if (secondWindows[best].score > firstWindow.score + 0.01) {
      found = { filler, firstWindow, best, passageWindow: secondWindows[best].score };
      break;
    }
  }
  assert.ok(found, `no passage lifts the second window (${tried.join('; ')})`);
  const { filler, firstWindow, best, passageWindow } = found;
  const others = await Promise.all(candidates.map((c) => scorePair(c.join(' '))));
  const distractor = others.findIndex((s) => s.score > firstWindow.score + 1e-3 && s.score < passageWindow - 1e-3);
  assert.ok(distractor >= 0, `no document scores between ${firstWindow.score} and ${passageWindow}`);
  const documents = [[...filler, ...candidates[best]].join(' '), candidates[distractor].join(' ')];
  const rank = async (mode: string) =>
    ((await call(conn.client, 'rerank', { query: QUERY, documents, long_documents: mode, return_documents: false })).structuredContent as { results: ({ index: number } & Scored)[] }).results;
  const withTruncate = await rank('truncate');
  assert.equal(withTruncate[0].index, 1, 'truncate never sees the passage: the distractor wins');
  assert.ok(Math.abs(withTruncate[1].score - firstWindow.score) < 1e-5);
  const withChunk = await rank('chunk');
  assert.equal(withChunk[0].index, 0, 'chunk finds the passage: the long document wins');
  assert.equal(withChunk[0].windows, 2);
  assert.ok(Math.abs(withChunk[0].score - passageWindow) < 1e-5, 'the document scores as its best window');
});
