import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createBertNormalizer } from '../src/tokenizer/bert-normalizer.js';
import { PairTokenizer } from '../src/tokenizer/pair-tokenizer.js';
import { TINY_CE } from './helpers/fixtures.js';

// Expected strings follow the Rust `tokenizers` BertNormalizer (clean_text, handle_chinese_chars,
// strip_accents = lowercase, lowercase), which differs from tokenizers.js's own in these places.
const normalize = createBertNormalizer({ clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true });

test('lowercases code point by code point: a final capital sigma becomes σ, not ς', () => {
  assert.equal(normalize('ΟΔΟΣ'), 'οδοσ');
  assert.notEqual('ΟΔΟΣ'.toLowerCase(), 'οδοσ');
});

test('isolates CJK ideographs outside the BMP', () => {
  assert.equal(normalize('a𠀀b'), 'a 𠀀 b');
  assert.equal(normalize('中文'), ' 中  文 ');
  // 0x2B820..0x2B91F is not in the upstream ranges
  assert.equal(normalize('a\u{2B820}b'), 'a\u{2B820}b');
});

test('removes control and format characters, NUL and U+FFFD; maps whitespace to spaces', () => {
  assert.equal(normalize('a\u0000b\uFFFDc\u0007d\u200Be'), 'abcde');
  assert.equal(normalize('a\tb\nc\rd\u00A0e\u3000f'), 'a b c d e f');
  // U+0085 is a control character before it is whitespace
  assert.equal(normalize('a\u0085b'), 'ab');
});

test('strips accents after NFD, before lowercasing', () => {
  assert.equal(normalize('Café Ångström naïve'), 'cafe angstrom naive');
  assert.equal(normalize('İstanbul'), 'istanbul');
});

test('tokenizer uses the Rust-faithful normalizer', () => {
  const tokenizer = PairTokenizer.fromFiles(join(TINY_CE, 'tokenizer.json'), join(TINY_CE, 'tokenizer_config.json'));
  const sigma = tokenizer.encodeText('ΟΔΟΣ');
  const plain = tokenizer.encodeText('οδοσ');
  assert.deepEqual(sigma, plain);
  // a literal special token in the text stays a special token, as in Python
  assert.deepEqual(tokenizer.encodeText('[SEP]'), [102]);
});
