/**
 * `finetune --out` never deletes what the command did not write: a non-empty --out without the
 * marker an earlier finetune leaves is refused untouched, and paths are compared after resolving
 * symlinks, so a --base, --promote-to or database reached through a link is never emptied.
 * The refusals come before Python runs (a fake checkpoint is enough); Python is only probed
 * for its packages, so RERANK_PYTHON must name the finetune venv.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/run-cli.js';

const PYTHON = process.env.RERANK_PYTHON;
const skip = PYTHON || process.env.RERANK_REQUIRE_PYTHON ? false : 'RERANK_PYTHON is not set (the refusals after the Python probe need it)';

/** A directory shaped like a checkpoint (and like an old finetune output: it has metrics.json), with contents to check. */
function userDir(path: string): Record<string, string> {
  mkdirSync(path, { recursive: true });
  const files = { 'config.json': '{"model_type": "bert"}', 'model.safetensors': 'weights the user cares about', 'metrics.json': '{}', 'notes.txt': 'my notes' };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(path, name), text);
  return files;
}

function assertIntact(path: string, files: Record<string, string>): void {
  assert.deepEqual(readdirSync(path).sort(), Object.keys(files).sort(), `${path} was changed`);
  for (const [name, text] of Object.entries(files)) assert.equal(readFileSync(join(path, name), 'utf8'), text);
}

const oneLine = (stderr: string): string => {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  return lines[0];
};

describe('finetune --out deletes nothing it did not write', () => {
  const py = () => ['--python', PYTHON ?? 'python3'];

  test('a user folder holding metrics.json and other files is refused, untouched, with one line naming it and the fix', { skip }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'rerank-out-'));
    const base = join(work, 'base');
    userDir(base);
    const out = join(work, 'results');
    const files = userDir(out);
    const r = await runCli(['finetune', '--epochs', '0', '--base', base, '--out', out, ...py()], { timeoutMs: 120_000 });
    assert.equal(r.code, 2, r.stderr);
    const line = oneLine(r.stderr);
    assert.ok(line.includes(out), line);
    assert.match(line, /not empty and was not written by rerank-mcp finetune \(it has no \.rerank-mcp-finetune\).*name a new or empty directory/);
    assertIntact(out, files);
  });

  test('--base a symlink to --out: refused, the base is not deleted', { skip }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'rerank-out-'));
    const real = join(work, 'model');
    const files = userDir(real);
    // An earlier output of ours, used as the next base through a link.
    writeFileSync(join(real, '.rerank-mcp-finetune'), 'x');
    const link = join(work, 'base-link');
    symlinkSync(real, link);
    const r = await runCli(['finetune', '--epochs', '0', '--base', link, '--out', real, ...py()], { timeoutMs: 120_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(oneLine(r.stderr), /--out .* and the base checkpoint .* are the same directory or one holds the other \(after resolving symlinks/);
    assertIntact(real, { ...files, '.rerank-mcp-finetune': 'x' });
  });

  test('--out a symlink to --promote-to, or inside it, or holding the database: refused before anything runs', async () => {
    const work = mkdtempSync(join(tmpdir(), 'rerank-out-'));
    const served = join(work, 'served');
    const files = userDir(served);
    const link = join(work, 'out-link');
    symlinkSync(served, link);
    const db = join(work, 'data', 'feedback.db');
    mkdirSync(join(work, 'data'));
    writeFileSync(db, 'not touched');
    for (const [out, what] of [[link, /and --promote-to .* are the same directory or one holds the other \(--out resolves to/], [join(link, 'sub'), /are the same directory or one holds the other/]] as const) {
      const r = await runCli(['finetune', '--db', db, '--out', out, '--promote-to', served, '--python', '/nonexistent/python']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(oneLine(r.stderr), what);
    }
    const r = await runCli(['finetune', '--db', db, '--out', join(work, 'data'), '--python', '/nonexistent/python']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(oneLine(r.stderr), /holds the feedback database/);
    assertIntact(served, files);
    assert.equal(readFileSync(db, 'utf8'), 'not touched');
  });

  test('an earlier output of ours (it holds the marker) is emptied and written again', { skip }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'rerank-out-'));
    const base = join(work, 'base');
    userDir(base);
    const out = join(work, 'out');
    mkdirSync(join(out, 'onnx'), { recursive: true });
    writeFileSync(join(out, '.rerank-mcp-finetune'), 'x');
    writeFileSync(join(out, 'onnx', 'stale.onnx'), 'stale');
    // The fake checkpoint makes Python fail after --out was prepared: what is left is what preparing did.
    const r = await runCli(['finetune', '--epochs', '0', '--base', base, '--out', out, ...py()], { timeoutMs: 180_000 });
    assert.equal(r.code, 2);
    assert.ok(!existsSync(join(out, 'onnx', 'stale.onnx')), 'a stale file of the earlier output would ride along into a promotion');
    assert.ok(existsSync(join(out, '.rerank-mcp-finetune')), 'the new output is marked as ours');
  });
});
