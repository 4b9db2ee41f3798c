/**
 * A `rerank-mcp finetune` killed with SIGKILL (no handler runs, nothing is forwarded) must not
 * leave its Python child training on: the real CLI runs the real python/finetune.py (RERANK_PYTHON),
 * the node parent is SIGKILLed once Python is under way, and the child must be gone within seconds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, REPO_ROOT, TINY_CE } from './helpers/fixtures.js';

const PYTHON = process.env.RERANK_PYTHON;
const skip = PYTHON || process.env.RERANK_REQUIRE_PYTHON ? false : 'RERANK_PYTHON is not set: it must name a Python with python/requirements-finetune.txt installed';
const GONE_WITHIN_MS = 5_000;

/** The children of `pid` running python/finetune.py, read from /proc. */
function pythonChildren(pid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('finetune.py')) found.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** Running (a zombie nobody has reaped yet counts as gone: it runs no code). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

let work: string;
before(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'rerank-orphan-'));
  execFileSync(PYTHON!, [join(REPO_ROOT, 'scripts', 'make_tiny_base.py'), '--tokenizer', TINY_CE, '--out', join(work, 'base')], { env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: 'ignore' });
});
after(() => work && rmSync(work, { recursive: true, force: true }));

test('SIGKILL of rerank-mcp finetune: its Python child exits within seconds', { skip }, async () => {
  const parent = spawn(process.execPath, [CLI, 'finetune', '--epochs', '0', '--base', join(work, 'base'), '--out', join(work, 'out'), '--python', PYTHON!], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  // Python under way: it has printed its first line (so it outlived its start), through the parent.
  await new Promise<void>((ok, fail) => {
    parent.stderr.on('data', (d) => {
      stderr += d;
      if (/training pairs/.test(stderr)) ok();
    });
    parent.on('close', (code) => fail(new Error(`finetune ended (exit ${code}) before Python started: ${stderr}`)));
  });
  const children = pythonChildren(parent.pid!);
  assert.equal(children.length, 1, `one Python child of ${parent.pid}: ${children}`);
  const [child] = children;
  parent.kill('SIGKILL');
  const killedAt = Date.now();
  while (running(child) && Date.now() - killedAt < 60_000) await new Promise((r) => setTimeout(r, 50));
  const lived = Date.now() - killedAt;
  if (running(child)) process.kill(child, 'SIGKILL');
  console.log(`# Python child ran ${lived} ms after its parent was SIGKILLed`);
  assert.ok(lived <= GONE_WITHIN_MS, `the Python child ${child} ran on ${lived} ms after its parent was SIGKILLed`);
});
