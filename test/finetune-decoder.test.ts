/**
 * Fine-tuning the new families with real Python (RERANK_PYTHON, as test/finetune.test.ts): a tiny
 * random Qwen3 seq-cls base is trained with BCE inside its prompt and exported, a tiny ModernBERT is
 * exported through `rerank-mcp finetune --epochs 0`; each export passes finetune.py's ONNX-vs-predict
 * check and is served with the template the server picks for it.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { REPO_ROOT } from './helpers/fixtures.js';
import { runCli } from './helpers/run-cli.js';

const PYTHON = process.env.RERANK_PYTHON;
const skip = PYTHON || process.env.RERANK_REQUIRE_PYTHON ? false : 'RERANK_PYTHON is not set: it must name a Python with python/requirements-finetune.txt installed';
const fixture = (name: string) => join(REPO_ROOT, 'test', 'fixtures', name);

describe('finetune: decoder and ModernBERT bases', { skip }, () => {
  const work = mkdtempSync(join(tmpdir(), 'rerank-ft-decoder-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  test('python/finetune.py trains a Qwen3 seq-cls base inside the qwen3-reranker prompt and exports a matching ONNX', async () => {
    const rows = [
      ['where is bm25 computed?', 'def bm25(q, doc): return score', 1],
      ['where is bm25 computed?', 'Install with npm ci', 0],
      ['how do I sort a list', 'sorted(xs, key=len)', 1],
      ['how do I sort a list', 'the cat sat on the mat', 0],
      ['检索模型', '排序 模型 检索', 1],
      ['检索模型', '😀 emoji only', 0],
    ];
    const train = join(work, 'train.jsonl');
    writeFileSync(train, rows.map(([q, d, l]) => JSON.stringify({ sentence_0: q, sentence_1: d, label: l })).join('\n') + '\n');
    const out = join(work, 'qwen3-out');
    const r = spawnSync(PYTHON!, [join(REPO_ROOT, 'python', 'finetune.py'), '--train', train, '--base', fixture('qwen3-tiny'), '--out', out, '--epochs', '1', '--max-length', '256'], {
      encoding: 'utf8',
      env: { ...process.env, HF_HUB_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' },
      timeout: 900_000,
    });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    assert.equal(metrics.prompt_template, 'qwen3-reranker');
    assert.ok(metrics.onnx.fp32_max_abs_diff <= 1e-4, `ONNX vs predict ${metrics.onnx.fp32_max_abs_diff}`);
    assert.deepEqual(metrics.onnx.inputs, ['input_ids', 'attention_mask']);
    // The prefix-reuse graph beside it, checked against the fine-tuned weights, and served.
    assert.ok(metrics.onnx.past_max_abs_diff <= 1e-4, `model_past.onnx vs PyTorch ${metrics.onnx.past_max_abs_diff}`);
    const model = await CrossEncoder.load({ model: out, variant: 'fp32' });
    try {
      assert.equal(model.info().inference, 'prefix-reuse');
      assert.equal(model.info().prompt_template, 'qwen3-reranker');
      assert.equal(model.info().max_length, 256);
      assert.equal(model.info().pad_token_id, JSON.parse(readFileSync(join(fixture('qwen3-tiny'), 'config.json'), 'utf8')).pad_token_id);
    } finally {
      await model.release();
    }
    // Its int8 twin too (model_past_quantized.onnx); the base's, left from an earlier export, is
    // refused at load: one epoch on six pairs moves the weights only a little.
    const int8 = await CrossEncoder.load({ model: out, variant: 'int8' });
    try {
      assert.equal(int8.info().inference, 'prefix-reuse');
      assert.match(int8.info().prefix_graph!, /model_past_quantized\.onnx$/);
    } finally {
      await int8.release();
    }
    copyFileSync(join(fixture('qwen3-tiny'), 'onnx', 'model_past_quantized.onnx'), join(out, 'onnx', 'model_past_quantized.onnx'));
    const stale = await CrossEncoder.load({ model: out, variant: 'int8' });
    try {
      assert.equal(stale.info().inference, 'plain');
    } finally {
      await stale.release();
    }
  });

  test('rerank-mcp finetune --epochs 0 --base <ModernBERT checkpoint> exports a servable model', async () => {
    const out = join(work, 'modernbert-out');
    const r = await runCli(['finetune', '--epochs', '0', '--base', fixture('modernbert-tiny'), '--out', out, '--python', PYTHON!], { timeoutMs: 900_000 });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    assert.equal(metrics.prompt_template, 'none');
    assert.ok(metrics.onnx.fp32_max_abs_diff <= 1e-4, `ONNX vs predict ${metrics.onnx.fp32_max_abs_diff}`);
    const model = await CrossEncoder.load({ model: out, variant: 'fp32' });
    try {
      assert.equal(model.info().prompt_template, 'none');
      assert.deepEqual(model.info().input_names, ['input_ids', 'attention_mask']);
      assert.equal(model.info().inference, 'plain', 'no prefix graph for an encoder');
    } finally {
      await model.release();
    }
  });
});
