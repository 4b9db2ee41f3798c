/**
 * The cheap lower bound on a call's tokens (PairTokenizer.leastTokens), which lets the budget
 * (--max-call-tokens) refuse a huge chunked call before any of it is tokenized, for every exact
 * tokenizer family: BERT WordPiece, XLM-R Unigram and byte-level BPE (Qwen3, mxbai-v2, ModernBERT).
 * The bound must never exceed the real count: checked on every fixture's texts and on hostile ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { CallTooLargeError, DEFAULT_ENGINE_OPTIONS, ScoringEngine } from '../src/engine/scoring-engine.js';
import { TokenizerPool } from '../src/engine/tokenizer-pool.js';
import { PairTokenizer } from '../src/tokenizer/pair-tokenizer.js';
import { REPO_ROOT, TINY_CE } from './helpers/fixtures.js';

const F = join(REPO_ROOT, 'test', 'fixtures');
const families: [string, string, string][] = [
  ['tiny-ce (BERT WordPiece)', TINY_CE, 'whitespace'],
  ['xlmr-tiny (XLM-R Unigram)', join(F, 'xlmr-tiny'), 'spaces'],
  ['qwen3-tiny (byte-level BPE)', join(F, 'qwen3-tiny'), 'whitespace'],
  ['mxbai-v2-tiny (byte-level BPE)', join(F, 'mxbai-v2-tiny'), 'whitespace'],
  ['modernbert-tiny (byte-level BPE, GPT-2 split)', join(F, 'modernbert-tiny'), 'whitespace'],
  ['bytelevel/qwen3', join(F, 'bytelevel', 'qwen3'), 'whitespace'],
  ['bytelevel/mxbai-v2', join(F, 'bytelevel', 'mxbai-v2'), 'whitespace'],
  ['bytelevel/modernbert', join(F, 'bytelevel', 'modernbert'), 'whitespace'],
];

const tokenizerOf = (dir: string) => PairTokenizer.fromFiles(join(dir, 'tokenizer.json'), existsSync(join(dir, 'tokenizer_config.json')) ? join(dir, 'tokenizer_config.json') : null);

/** Every text of the fixtures' pairs. */
function fixtureTexts(): string[] {
  const files = ['xlmr-tiny-parity.json', 'qwen3-tiny-parity.json', 'mxbai-v2-tiny-parity.json', 'modernbert-tiny-parity.json', 'parity/unicode-planes.json',
    'bytelevel/qwen3-pairs.json', 'bytelevel/mxbai-v2-pairs.json', 'bytelevel/modernbert-pairs.json'];
  return files.flatMap((f) => (JSON.parse(readFileSync(join(F, f), 'utf8')) as { pairs: [string, string][] }).pairs.flat());
}

/** 99-letter words ending in a character outside the vocabulary (as in issue 15). */
const hostileWords = (chars: number): string => `${'qzx'.repeat(33)}\uA66E `.repeat(Math.ceil(chars / 101)).slice(0, chars);
const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const hostile: string[] = [
  hostileWords(5000),
  [...ALNUM].join(' '), [...ALNUM].join('\t'), [...ALNUM].join('\n'), [...ALNUM].join('\r\n'), [...ALNUM].join('\u00a0'), [...ALNUM].join('\u3000'),
  [...ALNUM].join('\u200b'), [...ALNUM].join('\u2581'), [...ALNUM].join('\u0000'), [...ALNUM].join('\ufeff'), [...ALNUM].join('\u00ad'),
  // Combining marks after ASCII letters (composed by NFC, stripped by BERT), alone, and in runs.
  'e\u0301 a\u0308 o\u0303\u0304 \u0301 \u0301a b\u0301\u0301\u0301 c\u20dd',
  "it's they're we'll I'd 'S 'LL don't 's 't",
  '1 2 3 12 123 1234 1,234 1.5 \u0661\u0662 \uff11 \u2460 \u00bd x2 2x',
  '<s> </s> <mask> a <mask> b <pad><unk> <|endoftext|> <|im_start|>x <|im_end|> [CLS] [SEP] [MASK]',
  'a.b,c;d:e!f?g(h)i[j]k{l}m<n>o/p\\q|r"s\'t`u~v@w#x$y%z^A&B*C-D_E+F=G',
  '  leading and trailing  ', '\t\n\r\x0b\x0c\u0085\u2028\u2029', 'mixed\u00a0nbsp\u2000en\u3000ideographic\u205fspace',
  '\ud83d\ude00 a\ud83d\udc4d\ud83c\udffd b \ud83c\uddeb\ud83c\uddf7c \ud800 d \udfff e',
  'ｆｕｌｌ ﬁ ① ＡＢＣ ½ Ⅻ ㎏ ℌ ℍ',
  '\u0130stanbul \u0131 \u00df \u1e9e \u03a3\u03c3\u03c2 DŽ ǅ ǆ',
  'x'.repeat(3000), `${'a '.repeat(2000)}`, `${'1'.repeat(3000)} ${'9 '.repeat(500)}`,
  Array.from({ length: 400 }, (_, i) => String.fromCodePoint(0x20 + ((i * 7919) % 0x2fff))).join(''),
];

for (const [name, dir, expected] of families) {
  test(`${name}: a lower bound is known, and it never exceeds the real count`, () => {
    const tokenizer = tokenizerOf(dir);
    assert.equal(tokenizer.verified, true);
    assert.equal(tokenizer.lowerBound, expected);
    // Not vacuous: one token at least per word of plain text.
    assert.equal(tokenizer.leastTokens('the quick brown fox, 42 times', Infinity), 6);
    let checked = 0;
    for (const text of [...fixtureTexts(), ...hostile]) {
      const least = tokenizer.leastTokens(text, Infinity);
      const actual = tokenizer.encodeText(text).length;
      assert.ok(least <= actual, `${name}: bound ${least} > ${actual} tokens for ${JSON.stringify(text.slice(0, 80))}`);
      checked++;
    }
    assert.ok(checked > 100);
  });
}

const nonBert = families.filter(([name]) => /tiny/.test(name) && !/BERT WordPiece/.test(name));
for (const [name, dir] of nonBert) {
  test(`${name}: a chunked call over --max-call-tokens is refused before anything is tokenized`, async () => {
    const model = await CrossEncoder.load({ model: dir, variant: 'fp32' }, (path, config) => TokenizerPool.open(path, config));
    try {
      // Every encode job the engine posts to the tokenizer workers is counted.
      let jobs = 0;
      const call = model.tokenizers.call.bind(model.tokenizers);
      (model.tokenizers as { call: typeof call }).call = () => {
        const c = call();
        const encode = c.encode.bind(c);
        c.encode = (job) => (jobs++, encode(job));
        return c;
      };
      const engine = new ScoringEngine(model, { ...DEFAULT_ENGINE_OPTIONS, maxCallTokens: 20_000 });
      const huge = hostileWords(32 * 1024 * 1024);
      const started = performance.now();
      await assert.rejects(engine.rerank('a query', [huge], { longDocuments: 'chunk' }), CallTooLargeError);
      const ms = performance.now() - started;
      const many = Array.from({ length: 40 }, (_, i) => `${i} ${hostileWords(100_000)}`);
      await assert.rejects(engine.rerank('a query', many, { longDocuments: 'chunk' }), CallTooLargeError);
      console.log(`# ${name}: 32 MB chunked call refused in ${ms.toFixed(0)} ms, ${jobs} encode jobs`);
      assert.equal(jobs, 0, 'the refused calls were sent to be tokenized');
      assert.ok(ms < 5000, `the 32 MB call was refused after ${ms.toFixed(0)} ms`);
      // Under the budget, calls are still served (the bound does not refuse what fits).
      const ok = await engine.rerank('a query', ['a short document', 'another one'], { longDocuments: 'chunk' });
      assert.equal(ok.length, 2);
    } finally {
      model.release();
    }
  });
}
