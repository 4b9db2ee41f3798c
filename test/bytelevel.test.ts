/**
 * The byte-level BPE family (Qwen3-Reranker, mxbai-rerank-v2, ModernBERT shapes) against Python:
 * test/fixtures/bytelevel, made by scripts/make_bytelevel_fixture.py. RERANK_BYTELEVEL_FIXTURES
 * points it at other tokenizers the script made (`--unseen --out DIR`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PairTokenizer } from '../src/tokenizer/pair-tokenizer.js';
import { REPO_ROOT } from './helpers/fixtures.js';

interface ByteLevelFixture {
  shape: string;
  max_length: number;
  pairs: [string, string][];
  input_ids: number[][];
  token_type_ids: number[][];
  planes?: { chunk: number; sha256_16: string[]; decomposed: string; decomposed_sha256_16: string };
}

const DIR = process.env.RERANK_BYTELEVEL_FIXTURES ?? join(REPO_ROOT, 'test', 'fixtures', 'bytelevel');
const SHAPES = ['qwen3', 'mxbai-v2', 'modernbert'];

const load = (shape: string): { fixture: ByteLevelFixture; tokenizer: PairTokenizer } => ({
  fixture: JSON.parse(readFileSync(join(DIR, `${shape}-pairs.json`), 'utf8')) as ByteLevelFixture,
  tokenizer: PairTokenizer.fromFiles(join(DIR, shape, 'tokenizer.json'), join(DIR, shape, 'tokenizer_config.json')),
});

/** What scripts/make_bytelevel_fixture.py writes for each code point. */
function cell(c: string): string {
  const cp = c.codePointAt(0)!;
  const jamo = cp >= 0xac00 && cp <= 0xd7a3 ? c.normalize('NFD') : '';
  return `${c}${c}x1${jamo} ${c}\u0323\u0301\r\n`;
}

const idsHash = (ids: number[]): string => createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 16);

for (const shape of SHAPES) {
  const { fixture, tokenizer } = load(shape);

  test(`${shape}: verified bytelevel-bpe family`, () => {
    assert.equal(tokenizer.family, 'bytelevel-bpe');
    assert.equal(tokenizer.verified, true);
  });

  test(`${shape}: the fixture covers cut, empty and special-token pairs`, () => {
    assert.ok(fixture.pairs.length >= 300);
    const cut = fixture.input_ids.filter((ids) => ids.length === fixture.max_length).length;
    assert.ok(cut >= 100, `${cut} pairs cut to max_length`);
    assert.ok(fixture.pairs.some(([q, d]) => q.length > fixture.max_length * 4 && d.length > fixture.max_length * 4), 'both sides over');
    assert.ok(fixture.pairs.some(([q]) => q === '') && fixture.pairs.some(([, d]) => d === ''), 'empty sides');
    assert.ok(fixture.pairs.some(([q, d]) => /<\|im_start\|>|\[MASK\]/.test(q + d)), 'special tokens inside text');
  });

  test(`${shape}: ids and type ids identical to the fast tokenizer on every pair`, () => {
    const wrong: number[] = [];
    fixture.pairs.forEach(([q, d], i) => {
      const enc = tokenizer.encodePair(q, d, fixture.max_length);
      if (JSON.stringify(enc.inputIds) !== JSON.stringify(fixture.input_ids[i]) || JSON.stringify(enc.typeIds) !== JSON.stringify(fixture.token_type_ids[i])) {
        wrong.push(i);
      }
    });
    assert.deepEqual(wrong, [], `${wrong.length} of ${fixture.pairs.length} pairs get other ids`);
  });

  if (fixture.planes) {
    const planes = fixture.planes;
    test(`${shape}: every code point through normalizer, pre-tokenizer and BPE as Python`, () => {
      const cps: number[] = [];
      for (let c = 0; c < 0x110000; c++) if (c < 0xd800 || c > 0xdfff) cps.push(c);
      const wrong: string[] = [];
      planes.sha256_16.forEach((expected, k) => {
        const slice = cps.slice(k * planes.chunk, (k + 1) * planes.chunk);
        const text = slice.map((c) => cell(String.fromCodePoint(c))).join('');
        if (idsHash(tokenizer.encodeText(text)) !== expected) wrong.push(`U+${slice[0].toString(16)}..U+${slice[slice.length - 1].toString(16)}`);
      });
      assert.deepEqual(wrong, [], `${wrong.length} of ${planes.sha256_16.length} chunks differ`);
      assert.equal(idsHash(tokenizer.encodeText(planes.decomposed)), planes.decomposed_sha256_16, 'canonical decompositions recomposed as Python');
    });
  }
}

test('Qwen2Tokenizer: the pipeline transformers 5 rebuilds wins over the file, as in Python', () => {
  const { fixture } = load('qwen3');
  const json = JSON.parse(readFileSync(join(DIR, 'qwen3', 'tokenizer.json'), 'utf8'));
  // A file that says add_prefix_space: transformers' Qwen2Tokenizer ignores it, a plain fast tokenizer would not.
  json.pre_tokenizer.pretokenizers[1].add_prefix_space = true;
  const asQwen = new PairTokenizer(json, { tokenizer_class: 'Qwen2TokenizerFast' });
  const asFile = new PairTokenizer(json, { tokenizer_class: 'PreTrainedTokenizerFast' });
  const i = fixture.pairs.findIndex(([q, d]) => /^[a-z]/i.test(q) && d !== '');
  const [q, d] = fixture.pairs[i];
  assert.deepEqual(asQwen.encodePair(q, d, fixture.max_length).inputIds, fixture.input_ids[i]);
  assert.notDeepEqual(asFile.encodePair(q, d, fixture.max_length).inputIds, fixture.input_ids[i]);
  assert.equal(asFile.verified, true);
});

test('byte-level tokenizers outside what is modelled load unverified, naming why', () => {
  const json = JSON.parse(readFileSync(join(DIR, 'qwen3', 'tokenizer.json'), 'utf8'));
  const gpt2 = new PairTokenizer(json, { tokenizer_class: 'GPT2Tokenizer' });
  assert.equal(gpt2.verified, false);
  assert.match(gpt2.family, /tokenizer_class GPT2Tokenizer/);
  for (const [pattern, why] of [
    ['^\\s+', /anchor/],
    ['(a)\\1', /escape \\1/],
    ['a++', /possessive/],
    ['[[:alpha:]]', /nested class/],
    ['\\p{Greek}', /regex class Greek/],
  ] as const) {
    const odd = structuredClone(json);
    odd.pre_tokenizer.pretokenizers[0].pattern = { Regex: pattern };
    const t = new PairTokenizer(odd, {});
    assert.equal(t.verified, false, pattern);
    assert.match(t.family, why, pattern);
  }
});
