/**
 * BERT tokenization on all of Unicode against Python's Rust-backed tokenizer
 * (test/fixtures/parity/unicode-planes.json, made by scripts/make_unicode_fixture.py on the generated tiny-ce).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { ScoringEngine, DEFAULT_ENGINE_OPTIONS } from '../src/engine/scoring-engine.js';
import { bertPreTokenize, createBertNormalizer } from '../src/tokenizer/bert-normalizer.js';
import { FIXTURES, maxAbsDiff, TINY_CE } from './helpers/fixtures.js';

interface UnicodeFixture {
  chars: { normalized_runs: [number, number, number][]; normalized_explicit: [number, string][]; pre_tokenizer_runs: [number, number, number][] };
  pairs: [string, string][];
  tokens: { input_ids: number[]; token_type_ids: number[] }[];
  logits: number[];
}

const fixture = JSON.parse(readFileSync(join(FIXTURES, 'parity', 'unicode-planes.json'), 'utf8')) as UnicodeFixture;
const tokenizerJson = JSON.parse(readFileSync(join(TINY_CE, 'tokenizer.json'), 'utf8'));

let engine: ScoringEngine;
before(async () => {
  engine = new ScoringEngine(await CrossEncoder.load({ model: TINY_CE, variant: 'fp32' }), DEFAULT_ENGINE_OPTIONS);
});
after(() => engine.model.release());

test('BertNormalizer: every code point normalizes as in the Rust crate', () => {
  const normalize = createBertNormalizer(tokenizerJson.normalizer);
  const explicit = new Map(fixture.chars.normalized_explicit);
  const wrong: string[] = [];
  let checked = 0;
  for (const [start, end, kind] of fixture.chars.normalized_runs) {
    for (let cp = start; cp <= end; cp++) {
      const c = String.fromCodePoint(cp);
      const expected = [c, '', ' ', ` ${c} `, explicit.get(cp)][kind];
      const got = normalize(c);
      checked++;
      if (got !== expected && wrong.length < 20) wrong.push(`U+${cp.toString(16).toUpperCase()}: ${JSON.stringify(got)} != ${JSON.stringify(expected)}`);
    }
  }
  assert.equal(checked, 0x110000 - 0x800);
  assert.deepEqual(wrong, []);
});

test('BertPreTokenizer: every code point stays in its word, splits or is isolated as in the Rust crate', () => {
  const wrong: string[] = [];
  for (const [start, end, kind] of fixture.chars.pre_tokenizer_runs) {
    for (let cp = start; cp <= end; cp++) {
      const c = String.fromCodePoint(cp);
      const expected = [[`a${c}b`], ['a', 'b'], ['a', c, 'b']][kind];
      const got = bertPreTokenize(`a${c}b`);
      if (JSON.stringify(got) !== JSON.stringify(expected) && wrong.length < 20) wrong.push(`U+${cp.toString(16).toUpperCase()}: ${JSON.stringify(got)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('random pairs over all planes: ids equal the batched Python tokenizer on every pair', () => {
  assert.equal(fixture.pairs.length, 400);
  const wrong: number[] = [];
  fixture.pairs.forEach(([q, d], i) => {
    const enc = engine.model.encode(q, d);
    if (JSON.stringify(enc.inputIds) !== JSON.stringify(fixture.tokens[i].input_ids) || JSON.stringify(enc.typeIds) !== JSON.stringify(fixture.tokens[i].token_type_ids)) {
      wrong.push(i);
    }
  });
  assert.deepEqual(wrong, [], `pairs with other ids: ${wrong.join(', ')}`);
});

test('random pairs over all planes: scores within 1e-4 of Python', async () => {
  const scores = await engine.scorePairs(fixture.pairs.map(([query, document]) => ({ query, document })));
  const diff = maxAbsDiff(
    scores.map((s) => s.logit),
    fixture.logits,
  );
  assert.ok(diff < 1e-4, `max |Δ| ${diff}`);
});
