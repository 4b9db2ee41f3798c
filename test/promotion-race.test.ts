/**
 * Two promotions started at the same moment, over the lock a SIGKILLed promotion left behind.
 * Each trial: a directory serving model M0, a stale lock naming a dead process, then two real
 * processes released together, each promoting its own model (M1, M2) with the real promote
 * function. Afterwards exactly one of them promoted (the other refused as busy), or both did one
 * after the other: then the history says so (the second's `previous` is the first). `current`
 * names a whole version, rollback puts back the version before it, and nothing is left locked.
 *
 * The models are tiny stand-ins (an .onnx file and a marker): locking is what is under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/fixtures.js';

const SWAP = join(REPO_ROOT, 'dist', 'commands', 'model-swap.js');
const TRIALS = 40;

interface Swap {
  promoteModel: (source: string, target: string) => string;
  rollbackModel: (dir: string) => string;
  servedModelDir: (dir: string) => string;
  currentVersion: (dir: string) => string | undefined;
}

function model(root: string, mark: string): string {
  const dir = join(root, `src-${mark}`);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  writeFileSync(join(dir, 'onnx', 'model.onnx'), `weights of ${mark}\n`.repeat(64));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ mark }));
  return dir;
}

/** The marker of the model served, after checking the version is whole (both files, same model). */
function served(swap: Swap, dir: string): string {
  const d = swap.servedModelDir(dir);
  const mark = (JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as { mark: string }).mark;
  assert.equal(readFileSync(join(d, 'onnx', 'model.onnx'), 'utf8'), `weights of ${mark}\n`.repeat(64), `${d} is torn`);
  return mark;
}

const record = (dir: string, id: string) => JSON.parse(readFileSync(join(dir, '.versions', `${id}.json`), 'utf8')) as { previous?: string };
const markOf = (dir: string, id: string) => (JSON.parse(readFileSync(join(dir, '.versions', id, 'config.json'), 'utf8')) as { mark: string }).mark;

/** A promoter in its own process: loads the module, waits for "go" on stdin, promotes, prints its outcome. */
function promoter(source: string, dir: string) {
  const code = `
    const m = await import(${JSON.stringify(SWAP)});
    process.stdin.once('data', () => {
      try { m.promoteModel(process.argv[1], process.argv[2]); console.log('promoted'); }
      catch (err) { console.log('refused ' + err.message); }
      process.exit(0);
    });
    console.log('ready');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, source, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise<void>((ok) => child.stdout.on('data', (d) => { out += d; if (out.includes('ready')) ok(); }));
  const done = new Promise<string>((ok) => child.on('close', () => ok(out.replace('ready\n', '').trim())));
  return { child, ready, done };
}

test(`${TRIALS} trials: two promotions at once over a stale lock; one wins (or they run in turn), current is whole, rollback works`, async () => {
  const swap = (await import(SWAP)) as Swap;
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  assert.ok(deadPid > 0);
  const root = mkdtempSync(join(tmpdir(), 'rerank-race-'));
  const [m0, m1, m2] = ['M0', 'M1', 'M2'].map((m) => model(root, m));
  const failures: string[] = [];
  let both = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const dir = join(root, `served-${trial}`);
    swap.promoteModel(m0, dir);
    const first = swap.currentVersion(dir)!;
    // What a SIGKILL during a promotion leaves: the lock file naming a process that is gone (as
    // earlier versions wrote it, and as a lock of its own per process now is).
    writeFileSync(join(dir, '.versions', '.lock'), String(deadPid));
    writeFileSync(join(dir, '.versions', `.lock-${deadPid}-0badc0ffee00`), '');
    const racers = [promoter(m1, dir), promoter(m2, dir)];
    await Promise.all(racers.map((r) => r.ready));
    for (const r of racers) r.child.stdin.end('go\n');
    const outcomes = await Promise.all(racers.map((r) => r.done));
    try {
      const won = outcomes.map((o, i) => (o === 'promoted' ? `M${i + 1}` : undefined)).filter((m): m is string => !!m);
      for (const o of outcomes) if (o !== 'promoted') assert.match(o, /^refused .*being promoted or rolled back by pid \d+/, 'a loser is refused as busy');
      assert.ok(won.length >= 1, `nobody promoted: ${outcomes.join(' | ')}`);
      const now = served(swap, dir);
      assert.ok(won.includes(now), `serves ${now}, promoted: ${won.join(',')}`);
      // In turn, never overlapping: the newest version's `previous` is the other winner's, whose own is M0's.
      const cur = swap.currentVersion(dir)!;
      const prev = record(dir, cur).previous!;
      if (won.length === 2) {
        both++;
        assert.equal(markOf(dir, prev), won.find((m) => m !== now), `the version before ${now}`);
        assert.equal(record(dir, prev).previous, first, 'the first winner replaced M0');
      } else {
        assert.equal(prev, first, `the version before ${now} is M0's`);
      }
      swap.rollbackModel(dir);
      assert.equal(served(swap, dir), won.length === 2 ? markOf(dir, prev) : 'M0', 'rollback puts back the version before');
      const left = readdirSync(join(dir, '.versions')).filter((n) => n.startsWith('.'));
      assert.deepEqual(left, [], 'no lock or staging left behind');
      assert.ok(realpathSync(join(dir, 'current')).includes('.versions'));
    } catch (err) {
      failures.push(`trial ${trial}: ${(err as Error).message.split('\n')[0]} [${outcomes.join(' | ')}]`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  rmSync(root, { recursive: true, force: true });
  console.log(`# ${TRIALS} trials: ${failures.length} failed, ${both} with both promoting in turn`);
  assert.deepEqual(failures, []);
});

test('a lock a live process holds (its own file, or the older .lock) refuses a promotion in one line naming pid and file', async () => {
  const swap = (await import(SWAP)) as Swap;
  const root = mkdtempSync(join(tmpdir(), 'rerank-race-live-'));
  const [m0, m1] = ['M0', 'M1'].map((m) => model(root, m));
  for (const lock of [`.lock-${process.pid}-0123456789ab`, '.lock']) {
    const dir = join(root, `served-${lock}`);
    swap.promoteModel(m0, dir);
    // This test process is alive: its lock stands while a promotion in another process tries.
    writeFileSync(join(dir, '.versions', lock), lock === '.lock' ? String(process.pid) : '');
    const racer = promoter(m1, dir);
    await racer.ready;
    racer.child.stdin.end('go\n');
    const outcome = await racer.done;
    assert.match(outcome, new RegExp(`^refused ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is being promoted or rolled back by pid ${process.pid} \\(.*${lock.replace('.', '\\.')}\\)`));
    assert.equal(served(swap, dir), 'M0');
    assert.ok(readFileSync(join(dir, '.versions', lock)) !== undefined, 'the live lock is left alone');
  }
  rmSync(root, { recursive: true, force: true });
});
