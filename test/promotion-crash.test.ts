/**
 * Promotion and rollback survive SIGKILL at every step. The process is killed at each named step
 * (RERANK_TEST_CRASH_AT, a test-only hook in src/commands/model-swap.ts); after each kill the
 * directory the server would load must be, file for file (SHA-256 of every file), one of the two
 * models, `rerank-mcp score --model DIR` must give that model's reference logit, and the next
 * promotion or rollback must complete and leave no staging folder, temp file or lock behind.
 *
 * Models: A = the tiny-ce fixture, B = the MiniLM-shaped one (their scores differ).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { CLI, REPO_ROOT, TINY_CE, readParity, unpackedMiniLm, type MiniLmParity, type TinyParity } from './helpers/fixtures.js';
import { runCli } from './helpers/run-cli.js';

const SWAP = join(REPO_ROOT, 'dist', 'commands', 'model-swap.js');
const DIR_MODULE = join(REPO_ROOT, 'dist', 'model', 'model-dir.js');
const A = TINY_CE;
const B = unpackedMiniLm();
const tiny = readParity<TinyParity>('tiny-ce.json');
const minilm = readParity<MiniLmParity>('minilm-l6-ternary.json');
const [query, document] = minilm.pairs[0];
const logitOf = { A: tiny.torch_logits[tiny.pairs.findIndex(([q, d]) => q === query && d === document)], B: minilm.torch_logits[0] };

/** Every file under dir with its SHA-256, hidden entries and the pointer left out (as a server sees a plain directory). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (name.startsWith('.') || (d === dir && name === 'current')) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}
const snapA = snapshot(A);
const snapB = snapshot(B);

async function servedDir(dir: string): Promise<string> {
  const { servedModelDir } = (await import(DIR_MODULE)) as { servedModelDir: (d: string) => string };
  return servedModelDir(dir);
}

/** Which model DIR serves, proven by the bytes of every file and (score) by the logit the CLI computes from them. */
async function whichModel(dir: string, score = false): Promise<'A' | 'B'> {
  // NOTES.txt: a file of the user's own, kept beside model A in the plain-directory cases.
  const { 'NOTES.txt': _notes, ...snap } = snapshot(await servedDir(dir));
  const which = JSON.stringify(snap) === JSON.stringify(snapA) ? 'A' : JSON.stringify(snap) === JSON.stringify(snapB) ? 'B' : undefined;
  assert.ok(which, `${dir} serves neither model whole: ${JSON.stringify(Object.keys(snap))}`);
  if (!score) return which;
  const r = await runCli(['score', '--model', dir], { stdin: JSON.stringify({ query, document }) + '\n' });
  assert.equal(r.code, 0, r.stderr);
  const logit = (JSON.parse(r.stdout.trim()) as { logit: number }).logit;
  assert.ok(Math.abs(logit - logitOf[which]) < 1e-4, `${dir} holds model ${which} but scores ${logit} (expected ${logitOf[which]})`);
  return which;
}

/** Nothing a crash or a step leaves: staging folders, temp files, a lock; and a finished migration empties the top level. */
function assertTidy(dir: string): void {
  const top = readdirSync(dir).sort();
  assert.deepEqual(top, ['.versions', 'current'], `top level of ${dir}`);
  assert.ok(lstatSync(join(dir, 'current')).isSymbolicLink());
  const leftovers = readdirSync(join(dir, '.versions')).filter((n) => n.startsWith('.') || n.includes('.tmp-'));
  assert.deepEqual(leftovers, [], `leftovers in ${dir}/.versions`);
}

/** Runs a promotion (or rollback) in its own process, killed at `step` when given. */
function runStep(kind: 'promote' | 'rollback', dir: string, source: string, step?: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const code = kind === 'promote'
    ? `const m = await import(${JSON.stringify(SWAP)}); m.promoteModel(process.argv[1], process.argv[2]);`
    : `const m = await import(${JSON.stringify(SWAP)}); m.rollbackModel(process.argv[2]);`;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code, source, dir], { env: { ...process.env, RERANK_TEST_CRASH_AT: step ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (c, signal) => done({ code: c, signal, stderr }));
  });
}

async function crashed(kind: 'promote' | 'rollback', dir: string, source: string, step: string): Promise<void> {
  const r = await runStep(kind, dir, source, step);
  assert.equal(r.signal, 'SIGKILL', `the ${kind} was not killed at step ${step} (exit ${r.code}): ${r.stderr}`);
}

async function completes(kind: 'promote' | 'rollback', dir: string, source = ''): Promise<void> {
  const r = await runStep(kind, dir, source);
  assert.equal(r.code, 0, `${kind} after a crash failed: ${r.stderr}`);
}

function fresh(): string {
  return join(mkdtempSync(join(tmpdir(), 'rerank-crash-')), 'served');
}

describe('promotion and rollback: SIGKILL at any step leaves one whole model served', () => {
  // A plain directory (A, as a user made it, with a file of their own) promoted to B: migration, then the switch.
  const fromPlain: [string, 'A' | 'B'][] = [
    ['lock', 'A'], ['migrate-linked', 'A'], ['migrate-staged', 'A'], ['switch-linked', 'A'], ['migrate-switched', 'A'], ['migrate-cleaning', 'A'],
    ['copied', 'A'], ['staged', 'A'], ['recorded', 'A'], ['switched', 'B'],
  ];
  for (const [step, expected] of fromPlain) {
    test(`plain directory A promoted to B, killed at ${step}: serves ${expected} whole; then promotion and rollback work`, async () => {
      const dir = fresh();
      cpSync(A, dir, { recursive: true });
      cpSync(join(A, 'vocab.txt'), join(dir, 'NOTES.txt'));
      const userFiles = { ...snapA, 'NOTES.txt': snapA['vocab.txt'] };
      await crashed('promote', dir, B, step);
      // A server start (or the next step) must find one whole model: a torn one fails here.
      const which = await whichModel(dir, true);
      assert.equal(which, expected);
      if (which === 'A') await completes('promote', dir, B);
      assert.equal(await whichModel(dir), 'B');
      await completes('rollback', dir);
      // The user's directory as it was, their own file included: nothing of it is lost.
      assert.deepEqual(snapshot(await servedDir(dir)), userFiles);
      assertTidy(dir);
      await completes('rollback', dir);
      assert.equal(await whichModel(dir), 'B');
      assertTidy(dir);
    });
  }

  // A versioned directory with history (A, B, then A again being promoted): the older A version is collected after the switch.
  const managed: [string, 'A' | 'B'][] = [['copied', 'B'], ['staged', 'B'], ['recorded', 'B'], ['switch-linked', 'B'], ['switched', 'A'], ['collecting', 'A']];
  for (const [step, expected] of managed) {
    test(`versioned directory serving B promoted to A, killed at ${step}: serves ${expected} whole; rollback works`, async () => {
      const dir = fresh();
      await completes('promote', dir, A);
      await completes('promote', dir, B);
      await crashed('promote', dir, A, step);
      const which = await whichModel(dir, true);
      assert.equal(which, expected);
      // Rollback right after the crash: to A from B, to B from A.
      await completes('rollback', dir);
      assert.equal(await whichModel(dir), which === 'A' ? 'B' : 'A');
      await completes('promote', dir, A);
      assert.equal(await whichModel(dir), 'A');
      assertTidy(dir);
      assert.equal(readdirSync(join(dir, '.versions')).filter((n) => !n.endsWith('.json')).length, 2, 'only the served version and the one rollback returns to are kept');
    });
  }

  const rollbacks: [string, 'A' | 'B'][] = [['lock', 'B'], ['rollback-recorded', 'B'], ['switch-linked', 'B'], ['rollback-switched', 'A']];
  for (const [step, expected] of rollbacks) {
    test(`rollback from B to A killed at ${step}: serves ${expected} whole; the next rollback works`, async () => {
      const dir = fresh();
      await completes('promote', dir, A);
      await completes('promote', dir, B);
      await crashed('rollback', dir, '', step);
      const which = await whichModel(dir, true);
      assert.equal(which, expected);
      await completes('rollback', dir);
      assert.equal(await whichModel(dir), which === 'A' ? 'B' : 'A');
      assertTidy(dir);
    });
  }

  test('a directory promoted into by an older version (files at the top, the replaced model in .previous): rollback returns to .previous', async () => {
    const dir = fresh();
    cpSync(A, dir, { recursive: true });
    cpSync(B, join(dir, '.previous'), { recursive: true });
    const r = await runCli(['rollback', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await whichModel(dir, true), 'B');
    assertTidy(dir);
    await completes('rollback', dir);
    assert.equal(await whichModel(dir), 'A');
  });

  test('a server start removes what a killed promotion left, and rollback via the CLI still works', async () => {
    const dir = fresh();
    await completes('promote', dir, A);
    await crashed('promote', dir, B, 'copied');
    assert.ok(readdirSync(join(dir, '.versions')).some((n) => n.startsWith('.staging-')), 'the kill must leave a staging folder');
    const r = await runCli(['--model', dir], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assertTidy(dir);
    const none = await runCli(['rollback', dir]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no previous model in/);
    await completes('promote', dir, B);
    const back = await runCli(['rollback', dir]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await whichModel(dir), 'A');
    assert.ok(existsSync(CLI));
  });
});
