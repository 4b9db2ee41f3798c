/**
 * The learning loop end to end, with real Python (RERANK_PYTHON: a venv with
 * python/requirements-finetune.txt, which .ci/run creates): a tiny random base is exported
 * with `finetune --epochs 0` and served; an MCP client reranks fixture triplets and marks the
 * right result only; `finetune --promote-to` trains, evaluates and promotes (or not) per its
 * gate; the running server must then score like CrossEncoder(<out>).predict. Also: a one-class
 * database is refused, a gate refusal leaves the served directory byte-identical, and rollback
 * restores the previous model.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FeedbackStore } from '../src/feedback/feedback-store.js';
import { previousVersion, servedModelDir } from '../src/commands/model-swap.js';
import { FIXTURES, REPO_ROOT, TINY_CE } from './helpers/fixtures.js';
import { connectStdio, type StdioConnection } from './helpers/mcp.js';
import { runCli } from './helpers/run-cli.js';

const PYTHON = process.env.RERANK_PYTHON;
const TRIPLETS = 30; // 6 held-out queries (the minimum is 5): enough for the gate, quick to train
const skip = PYTHON
  ? false
  : process.env.RERANK_REQUIRE_PYTHON
    ? false
    : 'RERANK_PYTHON is not set: it must name a Python with python/requirements-finetune.txt installed (.ci/run creates .venv-finetune)';

interface Triplet {
  query: string;
  positive_text: string;
  negative_texts: string[];
}
interface Metrics {
  'mrr@10': number;
  'ndcg@10': number;
  'recall@1': number;
  'recall@5': number;
}
interface Result {
  out: string;
  train_pairs: number;
  eval_queries: number;
  before: Metrics | null;
  after: Metrics | null;
  served: Metrics | null;
  promoted: boolean;
}

const triplets = readFileSync(join(FIXTURES, 'agro', 'triplets.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, TRIPLETS).map((l) => JSON.parse(l) as Triplet);
const probePairs = triplets.slice(0, 4).flatMap((t) => [{ query: t.query, document: t.positive_text }, { query: t.query, document: t.negative_texts[0] }]);

/** Every file under dir (hidden ones too) with its SHA-256: equal snapshots mean byte-identical trees. */
function snapshot(dir: string, skipHidden = false): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (skipHidden && name.startsWith('.')) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** Without hidden entries (the .rerank-mcp-finetune marker of an output stays behind when a directory is migrated). */
const visible = (snap: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(snap).filter(([k]) => !k.split('/').some((p) => p.startsWith('.'))));

const lastJson = (stdout: string): Result => JSON.parse(stdout.trim().split('\n').pop()!) as Result;

/** CrossEncoder(<dir>).predict on the probe pairs, computed by sentence-transformers itself. */
function referenceScores(dir: string): number[] {
  const code = 'import json,sys\nfrom sentence_transformers import CrossEncoder\nm=CrossEncoder(sys.argv[1],local_files_only=True)\nprint(json.dumps([float(x) for x in m.predict(json.load(sys.stdin),show_progress_bar=False)]))';
  const out = execFileSync(PYTHON!, ['-c', code, dir], { input: JSON.stringify(probePairs.map((p) => [p.query, p.document])), env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['pipe', 'pipe', 'ignore'] });
  return JSON.parse(out.toString()) as number[];
}

async function serverScores(conn: StdioConnection): Promise<number[]> {
  const res = (await conn.client.callTool({ name: 'score_pair', arguments: { pairs: probePairs } })) as { isError?: boolean; structuredContent?: { results: { score: number }[] } };
  assert.ok(!res.isError, JSON.stringify(res));
  return res.structuredContent!.results.map((r) => r.score);
}

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

/** Polls the running server until it scores like `expected` (it reloads 1 s after the last file change). */
async function waitForScores(conn: StdioConnection, expected: number[], timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let diff = Infinity;
  while (Date.now() < deadline) {
    diff = maxDiff(await serverScores(conn), expected);
    if (diff <= 1e-4) return diff;
    await new Promise((r) => setTimeout(r, 250));
  }
  return diff;
}

describe('rerank-mcp finetune: the loop from feedback to the served model', { skip }, () => {
  let work: string;
  let base: string;
  let served: string;
  let db: string;
  let conn: StdioConnection;
  let exported: Record<string, string>;
  let exportedScores: number[];
  let firstRun: Result;
  const py = () => ['--python', PYTHON ?? ''];

  before(async () => {
    assert.ok(PYTHON, 'RERANK_REQUIRE_PYTHON is set but RERANK_PYTHON is not: run .ci/run, or point RERANK_PYTHON at a Python with python/requirements-finetune.txt');
    work = mkdtempSync(join(tmpdir(), 'rerank-finetune-test-'));
    base = join(work, 'base');
    served = join(work, 'served');
    db = join(work, 'feedback.db');
    const made = execFileSync(PYTHON, [join(REPO_ROOT, 'scripts', 'make_tiny_base.py'), '--tokenizer', TINY_CE, '--out', base], { env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.match(made, /tiny cross-encoder \(2\.1 M parameters, vocab 30522\)/);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(existsSync(join(base, f)), `make_tiny_base.py wrote no ${f}`);
  });

  after(async () => {
    await conn?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('--epochs 0 without --db exports the base as a servable directory', async () => {
    const r = await runCli(['finetune', '--epochs', '0', '--base', base, '--out', served, ...py()], { timeoutMs: 900_000 });
    assert.equal(r.code, 0, r.stderr);
    const result = lastJson(r.stdout);
    assert.deepEqual({ ...result, out: undefined }, { out: undefined, train_pairs: 0, eval_queries: 0, before: null, after: null, served: null, promoted: false });
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx', 'onnx/model_quantized.onnx', 'model.safetensors']) {
      assert.ok(existsSync(join(served, f)), `export wrote no ${f}`);
    }
    const config = JSON.parse(readFileSync(join(served, 'config.json'), 'utf8'));
    assert.equal(config.sentence_transformers.activation_fn, 'torch.nn.modules.linear.Identity');
    exported = snapshot(served);
  });

  test('agents rerank and mark the right result; the server scores like the exported checkpoint', async () => {
    conn = await connectStdio(['--model', served, '--standalone'], { RERANK_FEEDBACK_DB: db });
    exportedScores = referenceScores(served);
    assert.ok(maxDiff(await serverScores(conn), exportedScores) <= 1e-4);
    for (const [i, t] of triplets.entries()) {
      const documents = [...t.negative_texts];
      const at = i % (documents.length + 1);
      documents.splice(at, 0, t.positive_text);
      const res = (await conn.client.callTool({ name: 'rerank', arguments: { query: t.query, documents, return_documents: false } })) as { structuredContent: { rerank_id: string } };
      const fb = (await conn.client.callTool({ name: 'feedback', arguments: { rerank_id: res.structuredContent.rerank_id, relevant: [at] } })) as { isError?: boolean; structuredContent: { stored: number } };
      assert.ok(!fb.isError, JSON.stringify(fb));
      assert.equal(fb.structuredContent.stored, 1);
    }
  });

  test('finetune --promote-to trains, reports metrics, and promotes exactly when the gate says so', async (t) => {
    const out = join(work, 'out1');
    // No --base: the served directory's own checkpoint is the base.
    const r = await runCli(['finetune', '--db', db, '--out', out, '--promote-to', served, ...py()], { timeoutMs: 900_000 });
    assert.ok(r.code === 0 || r.code === 3, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /base: the checkpoint served from/);
    const result = lastJson(r.stdout);
    t.diagnostic(JSON.stringify(result));
    assert.equal(result.out, out);
    assert.equal(result.eval_queries, 6);
    // The set finetune trained on, read back with the same seed: 24 training calls, each its
    // positive plus its distinct unlabeled candidates (a few triplets repeat a negative) as negatives.
    const store = FeedbackStore.open(db);
    const set = store.trainingSet({ negatives: 4, seed: 42 });
    store.close();
    assert.equal(result.train_pairs, set.train.length);
    assert.equal(set.positives, 24);
    const heldOut = new Set(set.eval.map((c) => c.query));
    assert.equal(heldOut.size, 6);
    assert.ok(set.train.every((r) => !heldOut.has(r.sentence_0)), 'no held-out query may be trained on');
    const distinctNegatives = (t: Triplet) => new Set(t.negative_texts.filter((d) => d !== t.positive_text)).size;
    assert.equal(set.negatives, triplets.filter((t) => !heldOut.has(t.query)).reduce((n, t) => n + distinctNegatives(t), 0));
    for (const call of set.eval) {
      assert.equal(call.documents.length, 5, 'a held-out call is scored over all of its logged candidates');
      assert.deepEqual([...call.labels].sort(), [0, 0, 0, 0, 1]);
    }
    for (const m of [result.before!, result.after!]) {
      assert.deepEqual(Object.keys(m).sort(), ['mrr@10', 'ndcg@10', 'recall@1', 'recall@5']);
      for (const v of Object.values(m)) assert.ok(v >= 0 && v <= 1, JSON.stringify(m));
      assert.ok(m['recall@5'] === 1, 'every held-out call has 5 candidates, so the positive is always in the top 5');
      assert.ok(m['recall@1'] <= m['mrr@10'], 'one relevant per call: 1/rank >= [rank = 1]');
    }
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    assert.equal(metrics.before['mrr@10'], result.before!['mrr@10']);
    assert.equal(metrics.after['mrr@10'], result.after!['mrr@10']);
    assert.equal(metrics.before.queries, 6);
    // The base was the exported tiny model, which is also the one served: "before" and "served" are one model's ranking.
    assert.deepEqual(result.served, result.before);
    assert.deepEqual(metrics.served['mrr@10'], result.served!['mrr@10']);
    firstRun = result;
    const gate = result.after!['mrr@10'] >= result.served!['mrr@10'];
    assert.equal(result.promoted, gate);
    assert.equal(r.code, gate ? 0 : 3);
    if (!gate) {
      assert.deepEqual(snapshot(served), exported, 'a refused promotion must leave the served directory byte-identical');
      assert.match(r.stderr, /not promoted: MRR@10/);
      // Promote anyway (min-gain -1), so the hot swap below is still checked.
      const forced = await runCli(['finetune', '--db', db, '--out', out, '--promote-to', served, '--min-gain', '-1', '--base', served, ...py()], { timeoutMs: 900_000 });
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(lastJson(forced.stdout).promoted, true);
    }
    // The exported directory was migrated into a version: the one rollback returns to, every file of it kept.
    const previous = previousVersion(served);
    assert.ok(previous, 'no previous version recorded');
    assert.deepEqual(snapshot(join(served, '.versions', previous), true), visible(exported), 'the previous version must hold the replaced model');
    assert.deepEqual(snapshot(servedModelDir(served), true), visible(snapshot(out)), 'the served version must be the new model, file for file');

    const expected = referenceScores(out);
    assert.ok(maxDiff(expected, exportedScores) > 1e-3, 'training must have changed the scores');
    const diff = await waitForScores(conn, expected);
    assert.ok(diff <= 1e-4, `the running server did not switch to the new model within 30 s (max |diff| ${diff})`);
    assert.match(conn.stderr(), /model reloaded \(model files changed\)/);
  });

  test('a gate refusal (--min-gain 10) exits 3 and leaves the served directory byte-identical', async () => {
    const before = snapshot(served);
    const r = await runCli(['finetune', '--db', db, '--out', join(work, 'out2'), '--promote-to', served, '--min-gain', '10', '--epochs', '1', ...py()], { timeoutMs: 900_000 });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(lastJson(r.stdout).promoted, false);
    assert.match(r.stderr, /not promoted: .*below --min-gain 10/);
    assert.deepEqual(snapshot(served), before);
  });

  test('the gate compares with the served model: re-exporting the old base does not replace a better served model', async (t) => {
    // The case: after a promotion, `--epochs 0 --base <the old base>` was promoted (it was only compared with itself).
    const before = snapshot(served);
    const r = await runCli(['finetune', '--db', db, '--out', join(work, 'out5'), '--promote-to', served, '--epochs', '0', '--base', base, ...py()], { timeoutMs: 900_000 });
    const result = lastJson(r.stdout);
    t.diagnostic(JSON.stringify(result));
    // The served model is the one the first run trained (or, if the gate refused it, its forced promotion).
    assert.ok(result.served, 'the served model must be evaluated and reported');
    assert.deepEqual(result.before, result.after, '--epochs 0: the candidate is the base itself');
    assert.deepEqual(result.before, firstRun.before, 'the candidate is the old base: the first run\'s "before"');
    const metrics = JSON.parse(readFileSync(join(work, 'out5', 'metrics.json'), 'utf8'));
    assert.equal(metrics.served['mrr@10'], result.served['mrr@10']);
    assert.equal(metrics.served_dir, servedModelDir(served));
    if (result.served['mrr@10'] > result.after!['mrr@10']) {
      assert.equal(r.code, 3, r.stderr);
      assert.equal(result.promoted, false);
      assert.match(r.stderr, /not promoted: MRR@10 \S+ \(the served model .*\) -> /);
      assert.deepEqual(snapshot(served), before, 'a refused promotion must leave the served directory byte-identical');
    } else {
      t.diagnostic('the served model ranks no better than the old base on these calls: the gate may promote');
      assert.equal(r.code, 0, r.stderr);
    }
    assert.ok(firstRun.after!['mrr@10'] > firstRun.before!['mrr@10'], `training must have improved MRR@10 for this test to mean anything (${JSON.stringify(firstRun)})`);
  });

  test('rollback restores the previous model, and the running server follows', async () => {
    const promoted = snapshot(servedModelDir(served), true);
    const r = await runCli(['rollback', served]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(snapshot(servedModelDir(served), true), visible(exported));
    assert.deepEqual(snapshot(join(served, '.versions', previousVersion(served)!), true), promoted, 'the rolled-back model is what the next rollback returns to');
    const diff = await waitForScores(conn, exportedScores);
    assert.ok(diff <= 1e-4, `the server did not switch back within 30 s (max |diff| ${diff})`);
    const untouched = snapshot(base);
    const none = await runCli(['rollback', base]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no previous model/);
    assert.deepEqual(snapshot(base), untouched, 'a directory nothing was promoted into is left as it is');
  });

  test('a one-class database is refused before training, exit 2, one line saying what feedback to give', async () => {
    const oneClass = join(work, 'one-class.db');
    const store = FeedbackStore.open(oneClass);
    store.record(triplets.map((t) => ({ query: t.query, document: t.positive_text, label: 1 })));
    store.close();
    const r = await runCli(['finetune', '--db', oneClass, '--base', base, '--out', join(work, 'out3'), ...py()], { timeoutMs: 60_000 });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /no irrelevant pairs: mark wrong results with feedback \{rerank_id, irrelevant\}/);
    assert.ok(!existsSync(join(work, 'out3')), 'nothing may be trained');
    const stats = await runCli(['feedback', 'stats', '--db', oneClass]);
    assert.equal(stats.code, 0);
    assert.match(stats.stderr, /warning: rerank-mcp finetune would refuse this database: the training set has no irrelevant pairs/);
    const exp = await runCli(['feedback', 'export', '--db', oneClass]);
    assert.match(exp.stderr, /would refuse this database/);
    assert.match(exp.stderr, /every exported row is relevant/);
  });

  test('a missing Python or Python package is one line with the pip command, exit 2', async () => {
    const req = join(REPO_ROOT, 'python', 'requirements-finetune.txt');
    const missing = await runCli(['finetune', '--epochs', '0', '--base', base, '--out', join(work, 'out4'), '--python', join(work, 'no-such-python')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr.trim(), /error: cannot run Python "[^"]*no-such-python" \(ENOENT\): pass --python PATH or set RERANK_PYTHON/);
    assert.ok(missing.stderr.includes(`pip install -r ${req}`), missing.stderr);
    // A venv without the packages (and without pip: nothing is installed into it).
    const bare = join(work, 'bare-venv');
    execFileSync(PYTHON!, ['-m', 'venv', '--without-pip', bare]);
    const r = await runCli(['finetune', '--epochs', '0', '--base', base, '--out', join(work, 'out4')], { env: { RERANK_PYTHON: join(bare, 'bin', 'python') } });
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /lacks the Python package\(s\) torch, transformers, sentence_transformers/);
    assert.ok(lines[0].endsWith(`-m pip install -r ${req}`), lines[0]);
    assert.ok(!existsSync(join(work, 'out4')));
  });
});
