/**
 * The XLM-RoBERTa / SentencePiece Unigram family (the shape of bge-reranker) against
 * sentence-transformers: test/fixtures/xlmr-tiny and xlmr-tiny-parity.json, made by
 * scripts/make_xlmr_fixture.py.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrossEncoder, resolveMaxLength } from '../src/model/cross-encoder.js';
import { ScoringEngine, DEFAULT_ENGINE_OPTIONS } from '../src/engine/scoring-engine.js';
import { maxAbsDiff, REPO_ROOT } from './helpers/fixtures.js';
import { jsonLines, runCli } from './helpers/run-cli.js';

interface XlmrParity {
  max_length: number;
  activation: string;
  pairs: [string, string][];
  tokens: { input_ids: number[] }[];
  logits: number[];
  scores: number[];
}

export const XLMR_TINY = join(REPO_ROOT, 'test', 'fixtures', 'xlmr-tiny');
const parity = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'xlmr-tiny-parity.json'), 'utf8')) as XlmrParity;

let engine: ScoringEngine;
before(async () => {
  engine = new ScoringEngine(await CrossEncoder.load({ model: XLMR_TINY, variant: 'fp32' }), DEFAULT_ENGINE_OPTIONS);
});
after(() => engine.model.release());

test('xlmr-tiny: the fixture covers long, empty and out-of-vocabulary pairs', () => {
  const lengths = parity.tokens.map((t) => t.input_ids.length);
  assert.ok(lengths.filter((n) => n === parity.max_length).length >= 30, 'pairs cut to max_length');
  assert.ok(parity.pairs.some(([q]) => q === '') && parity.pairs.some(([, d]) => d === ''), 'empty sides');
  assert.ok(parity.tokens.filter((t) => t.input_ids.includes(3)).length >= 50, 'pairs with <unk>');
});

test('xlmr-tiny: loads as the xlmr-unigram family, without token_type_ids, max_length 512', () => {
  const info = engine.model.info();
  assert.equal(info.tokenizer_family, 'xlmr-unigram');
  assert.equal(info.tokenizer_verified, true);
  assert.deepEqual(info.input_names, ['input_ids', 'attention_mask']);
  assert.equal(info.max_length, parity.max_length);
  assert.equal(info.activation, 'sigmoid');
});

test('xlmr-tiny: token ids equal CrossEncoder.predict features on every pair', () => {
  const wrong: number[] = [];
  parity.pairs.forEach(([q, d], i) => {
    if (JSON.stringify(engine.model.encode(q, d).inputIds) !== JSON.stringify(parity.tokens[i].input_ids)) wrong.push(i);
  });
  assert.deepEqual(wrong, [], `${wrong.length} of ${parity.pairs.length} pairs get other ids`);
});

test('xlmr-tiny: scores within 1e-4 of CrossEncoder.predict (sigmoid) and logits of PyTorch', async () => {
  const scores = await engine.scorePairs(parity.pairs.map(([query, document]) => ({ query, document })));
  const ds = maxAbsDiff(scores.map((s) => s.score), parity.scores);
  const dl = maxAbsDiff(scores.map((s) => s.logit), parity.logits);
  assert.ok(ds < 1e-4, `max |Δ score| ${ds}`);
  assert.ok(dl < 1e-4, `max |Δ logit| ${dl}`);
});

test('max_length: positions offset by the padding index leave max_position_embeddings - 2', () => {
  const xlmr = { model_type: 'xlm-roberta', max_position_embeddings: 514, pad_token_id: 1 };
  assert.equal(resolveMaxLength(xlmr, {}), 512);
  assert.equal(resolveMaxLength(xlmr, { model_max_length: 512 }), 512);
  assert.equal(resolveMaxLength(xlmr, { model_max_length: 8192 }), 512);
  // bge-reranker-v2-m3's shape keeps its 8192, as sentence-transformers does (only longer models default to 4096).
  assert.equal(resolveMaxLength({ model_type: 'xlm-roberta', max_position_embeddings: 8194, pad_token_id: 1 }, { model_max_length: 8192 }), 8192);
  assert.equal(resolveMaxLength({ model_type: 'xlm-roberta', max_position_embeddings: 8194, pad_token_id: 1 }, { model_max_length: 8192 }, 100000), 8192);
  assert.equal(resolveMaxLength({ model_type: 'bert', max_position_embeddings: 512 }, {}), 512);
});

const toJsonl = (pairs: [string, string][]) => pairs.map(([query, document]) => JSON.stringify({ query, document })).join('\n') + '\n';

test('rerank-mcp tokenize and score on xlmr-tiny: Python ids, scores within 1e-4', async () => {
  const tokenized = await runCli(['tokenize', '--model', XLMR_TINY], { stdin: toJsonl(parity.pairs) });
  assert.equal(tokenized.code, 0, tokenized.stderr);
  const lines = jsonLines(tokenized.stdout) as { input_ids: number[] }[];
  assert.equal(lines.length, parity.pairs.length);
  lines.forEach((l, i) => assert.deepEqual(l.input_ids, parity.tokens[i].input_ids, `pair ${i}`));
  const scored = await runCli(['score', '--model', XLMR_TINY], { stdin: toJsonl(parity.pairs) });
  assert.equal(scored.code, 0, scored.stderr);
  const scores = jsonLines(scored.stdout) as { score: number }[];
  const diff = maxAbsDiff(
    scores.map((s) => s.score),
    parity.scores,
  );
  assert.ok(diff < 1e-4, `max |Δ score| ${diff}`);
  assert.doesNotMatch(tokenized.stderr, /not verified/);
});

test('a tokenizer outside the proven families loads with a warning and tokenizer_verified false', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rerank-unverified-'));
  cpSync(XLMR_TINY, dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  json.normalizer = { type: 'NFKC' };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const res = await runCli(['tokenize', '--model', dir], { stdin: toJsonl([['query', 'document']]) });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /warning: .*tokenizer not verified \(Unigram model with NFKC normalizer/);
  const model = await CrossEncoder.load({ model: dir, variant: 'fp32' });
  try {
    assert.equal(model.info().tokenizer_verified, false);
    assert.match(model.info().tokenizer_family, /^unverified: /);
  } finally {
    await model.release();
  }
});
