/**
 * Tokenization in time linear in the text (issue 15): words that end in a character outside
 * the vocabulary, long runs without whitespace, giant grapheme clusters. Each timing test
 * compares the same work at two sizes in the same process, so a loaded machine shifts both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exactEncoder } from '../src/tokenizer/pipeline.js';
import { wordPieceModel } from '../src/tokenizer/wordpiece.js';
import { graphemesInWindows } from '../src/tokenizer/precompiled.js';
import { REPO_ROOT, TINY_CE } from './helpers/fixtures.js';

const bertJson = JSON.parse(readFileSync(join(TINY_CE, 'tokenizer.json'), 'utf8'));
const xlmrJson = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'xlmr-tiny', 'tokenizer.json'), 'utf8'));

/** Rust's WordPiece loop as written there: every end from the longest down, each substring looked up. */
function referenceWordPiece(map: Map<string, number>, unk: number, word: string, maxChars = 100): number[] {
  const chars = Array.from(word);
  if (chars.length > maxChars) return [unk];
  const ids: number[] = [];
  for (let start = 0; start < chars.length; ) {
    let end = chars.length;
    let found: number | undefined;
    for (; end > start; end--) {
      found = map.get((start > 0 ? '##' : '') + chars.slice(start, end).join(''));
      if (found !== undefined) break;
    }
    if (found === undefined) return [unk];
    ids.push(found);
    start = end;
  }
  return ids;
}

function rng(seed: number): () => number {
  return () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
}

test('WordPiece by trie gives the ids of the longest-match-first loop', () => {
  const model = wordPieceModel(bertJson.model);
  const vocab = bertJson.model.vocab as Record<string, number>;
  const unk = vocab['[UNK]'];
  const map = new Map(Object.entries(vocab));
  const pieces = Object.keys(vocab).filter((p) => !p.startsWith('['));
  const odd = ['\uA66E', '\u{1F600}', '\u00e9', 'ß', '\u{20000}', '##', '#', '\u0301'];
  const random = rng(7);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
  let words = 0;
  for (let i = 0; i < 4000; i++) {
    let word = '';
    const parts = 1 + Math.floor(random() * 6);
    for (let k = 0; k < parts; k++) word += random() < 0.15 ? pick(odd) : pick(pieces).replace(/^##/, '');
    if (random() < 0.05) word = word.repeat(1 + Math.floor(random() * 30));
    assert.deepEqual(model(word), referenceWordPiece(map, unk, word), JSON.stringify(word));
    words++;
  }
  // max_input_chars_per_word counts code points: 100 astral characters are 200 code units.
  const astral = 'a'.repeat(99) + '\u{1F600}';
  assert.deepEqual(model(astral), referenceWordPiece(map, unk, astral));
  assert.deepEqual(model('a'.repeat(101)), [unk]);
  assert.ok(words === 4000);
});

function msPerWord(encode: (text: string) => number[], word: string, count: number): number {
  const text = `${word} `.repeat(count);
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    encode(text);
    best = Math.min(best, performance.now() - started);
  }
  return best / count;
}

test('a WordPiece word costs time linear in its length, even when it ends outside the vocabulary', () => {
  const encoder = exactEncoder(bertJson);
  const encode = (t: string) => encoder.encode(t);
  msPerWord(encode, 'warm up', 2000);
  // 10 and 100 characters (the most max_input_chars_per_word lets through): linear is 10x;
  // the substring-per-end loop was ~120x (3 ms against 0.03 ms).
  const short = msPerWord(encode, 'qzx'.repeat(3) + '\uA66E', 2000);
  const long = msPerWord(encode, 'qzx'.repeat(33) + '\uA66E', 2000);
  assert.ok(long / short < 30, `100-character words cost ${(long / short).toFixed(1)}x 10-character ones (${(long * 1000).toFixed(1)} µs against ${(short * 1000).toFixed(1)} µs)`);
});

test('Unigram (XLM-R) text costs time linear in its length, with and without whitespace', () => {
  const encoder = exactEncoder(xlmrJson);
  const time = (text: string): number => {
    let best = Infinity;
    for (let run = 0; run < 2; run++) {
      const started = performance.now();
      encoder.encode(text);
      best = Math.min(best, performance.now() - started);
    }
    return best;
  };
  time('warm up '.repeat(1000));
  for (const [name, make] of [
    ['hostile words', (n: number) => `${'qzx'.repeat(33)}\uA66E `.repeat(n / 100)],
    ['one long word', (n: number) => 'qzxa'.repeat(n / 4)],
    ['one giant grapheme cluster', (n: number) => 'a' + '\u0301'.repeat(n)],
  ] as const) {
    const small = time(make(8000));
    const large = time(make(64_000));
    // Linear: 8x. Intl.Segmenter over the whole text was quadratic (64x and more).
    assert.ok(large / small < 24, `${name}: 64 000 characters cost ${(large / small).toFixed(1)}x 8 000 (${large.toFixed(0)} ms)`);
  }
});

test('grapheme clusters found window by window are those of the whole text', () => {
  const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  const alphabet = ['a', ' ', '\r', '\n', '\u0301', '\u200d', '\u{1F469}', '\u{1F1EB}', '\u{1F1F7}', '\u1100', '\u1161', '\u11a8', '\uAC00', '\u0915', '\u094D', '\u0937', '\uA66E', '\u{1F3FB}', 'é', '\u0e33'];
  const random = rng(11);
  for (let i = 0; i < 3000; i++) {
    let text = '';
    const length = 1 + Math.floor(random() * 60);
    for (let k = 0; k < length; k++) text += alphabet[Math.floor(random() * alphabet.length)];
    const whole = Array.from(segmenter.segment(text), (s) => s.segment);
    for (const window of [4, 7, 16]) {
      const windowed = [...graphemesInWindows(segmenter, text, window)];
      // A cluster longer than the window comes out in pieces; normalization treats every piece
      // of 6 UTF-8 bytes or more character by character, as it does the whole cluster.
      if (whole.some((c) => c.length >= window * 8 - 2)) {
        assert.equal(windowed.join(''), text);
        continue;
      }
      assert.deepEqual(windowed, whole, `${JSON.stringify(text)} window ${window}`);
    }
  }
});
