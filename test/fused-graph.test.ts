/**
 * ONNX Runtime's transformer fusions at export (python/fuse_graph.py, issue 25 item 2): a BERT cross-encoder
 * exported with `finetune --epochs 0 --fuse on` gets onnx/model_fused.onnx with the fused Attention,
 * EmbedLayerNormalization and SkipLayerNormalization kernels; the server serves that file for fp32, over MCP,
 * with sentence-transformers' scores. `--fuse off` writes none, a fused graph older than model.onnx is not
 * served, and the keep-if-faster rule leaves nothing behind when the fused graph is not faster.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModelFiles } from '../src/model/model-dir.js';
import { FIXTURES, REPO_ROOT, TINY_CE } from './helpers/fixtures.js';
import { connectStdio } from './helpers/mcp.js';
import { runCli } from './helpers/run-cli.js';

const PYTHON = process.env.RERANK_PYTHON;
const skip = PYTHON || process.env.RERANK_REQUIRE_PYTHON ? false : 'RERANK_PYTHON is not set: it must name a Python with python/requirements-finetune.txt installed (.ci/run creates .venv-finetune)';

interface Triplet {
  query: string;
  positive_text: string;
  negative_texts: string[];
}
interface FuseReport {
  kept: boolean;
  reason: string;
  optimizer?: string;
  fused?: Record<string, number>;
  max_abs_diff?: number;
  ratio?: number;
}

const pairs = readFileSync(join(FIXTURES, 'agro', 'triplets.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 6)
  .map((l) => JSON.parse(l) as Triplet)
  .flatMap((t) => [{ query: t.query, document: t.positive_text }, ...t.negative_texts.slice(0, 2).map((d) => ({ query: t.query, document: d }))]);

/** CrossEncoder(<dir>).predict on the pairs, by sentence-transformers itself (PyTorch, the checkpoint). */
function referenceScores(dir: string): number[] {
  const code = 'import json,sys\nfrom sentence_transformers import CrossEncoder\nm=CrossEncoder(sys.argv[1],local_files_only=True)\nprint(json.dumps([float(x) for x in m.predict(json.load(sys.stdin),show_progress_bar=False)]))';
  const out = execFileSync(PYTHON!, ['-c', code, dir], { input: JSON.stringify(pairs.map((p) => [p.query, p.document])), env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['pipe', 'pipe', 'ignore'] });
  return JSON.parse(out.toString()) as number[];
}

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
const metrics = (dir: string) => JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { onnx: { fused: FuseReport; fp32_max_abs_diff: number } };

describe('fused graphs: ONNX Runtime transformer fusions at export, kept only where they pay', { skip }, () => {
  let work: string;
  let base: string;
  let fused: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'rerank-fused-'));
    base = join(work, 'base');
    fused = join(work, 'fused');
    execFileSync(PYTHON!, [join(REPO_ROOT, 'scripts', 'make_tiny_base.py'), '--tokenizer', TINY_CE, '--out', base], { env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('finetune --epochs 0 --fuse on: every attention, embedding and skip norm is fused, within 1e-4 of PyTorch', async () => {
    const r = await runCli(['finetune', '--epochs', '0', '--base', base, '--out', fused, '--fuse', 'on', '--python', PYTHON!], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    const report = metrics(fused).onnx.fused;
    assert.equal(report.kept, true, JSON.stringify(report));
    assert.equal(report.optimizer, 'bert');
    // make_tiny_base.py: 2 layers, so 2 Attention nodes, 2 skip norms each, one embedding norm.
    assert.deepEqual({ a: report.fused!.Attention, e: report.fused!.EmbedLayerNormalization, s: report.fused!.SkipLayerNormalization }, { a: 2, e: 1, s: 4 }, JSON.stringify(report.fused));
    assert.ok(report.max_abs_diff! <= 1e-4, `fused vs plain ${report.max_abs_diff}`);
    assert.ok(metrics(fused).onnx.fp32_max_abs_diff <= 1e-4, 'both fp32 graphs checked against CrossEncoder.predict');
    assert.ok(existsSync(join(fused, 'onnx', 'model_fused.onnx')));
  });

  test('the server serves model_fused.onnx for fp32 and scores as sentence-transformers does', async () => {
    const conn = await connectStdio(['--model', fused, '--standalone', '--db', join(work, 'fb.db')]);
    try {
      const info = (await conn.client.callTool({ name: 'model_info', arguments: {} })) as { structuredContent: { onnx_file: string } };
      assert.match(info.structuredContent.onnx_file, /onnx\/model_fused\.onnx$/);
      const res = (await conn.client.callTool({ name: 'score_pair', arguments: { pairs } })) as { isError?: boolean; structuredContent: { results: { score: number }[] } };
      assert.ok(!res.isError, JSON.stringify(res));
      const diff = maxDiff(res.structuredContent.results.map((x) => x.score), referenceScores(fused));
      assert.ok(diff <= 1e-4, `fused graph vs CrossEncoder.predict: ${diff}`);
    } finally {
      await conn.close();
    }
    assert.match(resolveModelFiles(fused, 'int8').onnxPath, /model_quantized\.onnx$/, 'int8 is not affected');
  });

  test('a fused graph older than model.onnx (fused from an earlier export) is not served', () => {
    const stale = join(work, 'stale');
    cpSync(fused, stale, { recursive: true });
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(join(stale, 'onnx', 'model_fused.onnx'), past, past);
    assert.match(resolveModelFiles(stale, 'fp32').onnxPath, /onnx\/model\.onnx$/);
  });

  test('--fuse off writes no fused graph; a fused graph that is not faster is not kept', async () => {
    const off = join(work, 'off');
    const r = await runCli(['finetune', '--epochs', '0', '--base', base, '--out', off, '--fuse', 'off', '--python', PYTHON!], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(join(off, 'onnx', 'model_fused.onnx')), false);
    assert.deepEqual(metrics(off).onnx.fused, { kept: false, reason: '--fuse off' });
    // Nothing runs in under 0 x the plain graph's time: the rule must refuse it and remove what it wrote.
    const out = execFileSync(PYTHON!, [join(REPO_ROOT, 'python', 'fuse_graph.py'), fused, '--keep-below', '0', '--rounds', '3'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const report = JSON.parse(out.trim().split('\n').pop()!) as FuseReport;
    assert.equal(report.kept, false);
    assert.match(report.reason, /not faster/);
    assert.ok(report.ratio! > 0);
    assert.equal(existsSync(join(fused, 'onnx', 'model_fused.onnx')), false);
    assert.equal(existsSync(join(fused, 'onnx', 'model_fused.onnx.data')), false);
  });
});
