import { test } from 'node:test';
import assert from 'node:assert/strict';
import { longestFirstLengths } from '../src/tokenizer/truncation.js';
import { PairTokenizer } from '../src/tokenizer/pair-tokenizer.js';
import { join } from 'node:path';
import { TINY_CE } from './helpers/fixtures.js';

test('longest_first keeps pairs that fit', () => {
  assert.deepEqual(longestFirstLengths(10, 20, 30), [10, 20]);
  assert.deepEqual(longestFirstLengths(0, 0, 5), [0, 0]);
});

test('longest_first cuts only the longer side when the shorter fits in half', () => {
  assert.deepEqual(longestFirstLengths(10, 600, 509), [10, 499]);
  assert.deepEqual(longestFirstLengths(600, 10, 509), [499, 10]);
  assert.deepEqual(longestFirstLengths(0, 600, 509), [0, 509]);
  assert.deepEqual(longestFirstLengths(600, 0, 509), [509, 0]);
  assert.deepEqual(longestFirstLengths(254, 400, 509), [254, 255]);
});

test('longest_first halves both sides, the odd token going to the longer one', () => {
  // budget 509 is odd: the longer side gets 255, the shorter 254
  assert.deepEqual(longestFirstLengths(300, 400, 509), [254, 255]);
  assert.deepEqual(longestFirstLengths(400, 300, 509), [255, 254]);
  assert.deepEqual(longestFirstLengths(255, 400, 509), [254, 255]);
  // a tie is not swapped, so the second sequence gets the odd token
  assert.deepEqual(longestFirstLengths(300, 300, 509), [254, 255]);
  // even budget: equal halves
  assert.deepEqual(longestFirstLengths(300, 400, 508), [254, 254]);
  // both longer than the whole budget
  assert.deepEqual(longestFirstLengths(1000, 2000, 9), [4, 5]);
});

test('longest_first never grows a side', () => {
  for (let a = 0; a < 40; a++) {
    for (let b = 0; b < 40; b++) {
      for (const budget of [1, 2, 7, 20, 33]) {
        const [x, y] = longestFirstLengths(a, b, budget);
        assert.ok(x <= a && y <= b, `${a},${b},${budget}`);
        assert.ok(x + y <= Math.max(budget, 0) || a + b <= budget, `${a},${b},${budget} -> ${x},${y}`);
      }
    }
  }
});

const tokenizer = PairTokenizer.fromFiles(join(TINY_CE, 'tokenizer.json'), join(TINY_CE, 'tokenizer_config.json'));

test('pair encoding truncates to max_length with [CLS] q [SEP] d [SEP] and type ids', () => {
  const long = Array.from({ length: 800 }, (_, i) => `word${i % 7}`).join(' ');
  const enc = tokenizer.encodePair('short query', long, 512);
  assert.equal(enc.inputIds.length, 512);
  assert.equal(enc.truncated, true);
  assert.equal(enc.inputIds[0], 101);
  assert.equal(enc.inputIds[511], 102);
  const q = tokenizer.encodeText('short query');
  assert.deepEqual(enc.inputIds.slice(1, 1 + q.length), q);
  assert.equal(enc.inputIds[1 + q.length], 102);
  assert.deepEqual(enc.typeIds.slice(0, q.length + 2), new Array(q.length + 2).fill(0));
  assert.deepEqual(enc.typeIds.slice(q.length + 2), new Array(512 - q.length - 2).fill(1));
});

test('pair encoding of two long sides gives each half the budget', () => {
  const longA = Array.from({ length: 700 }, () => 'alpha').join(' ');
  const longB = Array.from({ length: 900 }, () => 'beta').join(' ');
  const enc = tokenizer.encodePair(longA, longB, 512);
  const sep = enc.inputIds.indexOf(102);
  assert.equal(sep, 1 + 254);
  assert.equal(enc.inputIds.length, 512);
  // Swapped, the query still gets 254: Rust stops tokenizing each side once it reaches
  // max_length (512), so both count 512 and the odd token goes to the second (Python:
  // transformers 5.18 / tokenizers 0.23.2 puts the first [SEP] at 255 in both orders).
  const swapped = tokenizer.encodePair(longB, longA, 512);
  assert.equal(swapped.inputIds.indexOf(102), 1 + 254);
});

test('a prefix-tokenized long document gives the same ids as the whole document', () => {
  const doc = Array.from({ length: 30000 }, (_, i) => `tok${i}`).join(' ');
  const budget = tokenizer.budget(512);
  const full = tokenizer.encodeText(doc);
  const viaPrefix = tokenizer.encodePair('q', doc, 512);
  const expected = tokenizer.assembleTruncated(tokenizer.encodeText('q'), full, budget);
  assert.deepEqual(viaPrefix, expected);
});

test('empty query and empty document still get the special tokens', () => {
  assert.deepEqual(tokenizer.encodePair('', '', 512), { inputIds: [101, 102, 102], typeIds: [0, 0, 1], truncated: false });
});

test('--max-length style budgets: odd and tiny', () => {
  const enc = tokenizer.encodePair('one two three four five', 'six seven eight nine ten eleven', 8);
  assert.equal(enc.inputIds.length, 8);
  // budget 5: query 5 tokens, document 6 tokens: both halve, longer (document) gets 3
  assert.deepEqual(enc.typeIds, [0, 0, 0, 0, 1, 1, 1, 1]);
});
