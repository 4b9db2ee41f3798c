/**
 * Where tests and scripts find their fixtures: test/fixtures/ (see its README.md). The committed
 * real data (tokenizer files, triplets) is read in place; the random-weight models and their
 * parity references (models/, parity/, ignored by git) are made by scripts/make_ce_fixtures.py,
 * which runs here on first use and again whenever that script or its inputs change.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
export const TINY_CE = join(FIXTURES, 'models', 'tiny-ce');
export const TRIPLETS = join(FIXTURES, 'agro', 'triplets.jsonl');
export const CLI = join(REPO_ROOT, 'dist', 'cli.js');

const GENERATOR = join(REPO_ROOT, 'scripts', 'make_ce_fixtures.py');
const GENERATOR_INPUTS = [GENERATOR, join(REPO_ROOT, 'scripts', 'make_unicode_fixture.py')];
const STAMP = join(FIXTURES, 'models', '.stamp');

/** The hash of the generator and everything it reads: generated fixtures older than it are made again. */
function generatorHash(): string {
  const h = createHash('sha256');
  for (const file of GENERATOR_INPUTS) h.update(readFileSync(file));
  for (const name of readdirSync(join(FIXTURES, 'agro')).sort()) h.update(name).update(readFileSync(join(FIXTURES, 'agro', name)));
  return h.digest('hex');
}

/** The Python that has torch, transformers, sentence-transformers and onnxruntime (the one .ci/run builds). */
function python(): string {
  if (process.env.RERANK_PYTHON) return process.env.RERANK_PYTHON;
  const venv = join(REPO_ROOT, '.venv-finetune', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

/** Makes test/fixtures/models and parity unless they are up to date (about 3 minutes on 2 cores). */
export function ensureFixtures(): void {
  const hash = generatorHash();
  if (existsSync(STAMP) && readFileSync(STAMP, 'utf8') === hash) return;
  const py = python();
  process.stderr.write(`test fixtures: making test/fixtures/models and parity with ${py} scripts/make_ce_fixtures.py (once, about 3 min)\n`);
  const r = spawnSync(py, [GENERATOR], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: { ...process.env, TQDM_DISABLE: '1' } });
  if (r.error || r.status !== 0) {
    const why = r.error?.message ?? (r.stderr.trim().split('\n').pop() || `exit ${r.status}`);
    throw new Error(`test fixtures: ${py} ${GENERATOR} failed (${why}); run .ci/run once to build .venv-finetune, or set RERANK_PYTHON to a Python with torch, transformers, sentence-transformers, onnx and onnxruntime`);
  }
  writeFileSync(STAMP, hash);
}
ensureFixtures();

/**
 * Every server a test file starts over stdio goes through the shared daemon by default: each test
 * process gets a daemon directory of its own (never the user's), and the daemons started there are
 * stopped when it exits, so none outlives the test run.
 */
export const TEST_DAEMON_DIR = (process.env.RERANK_DAEMON_DIR ??= mkdtempSync(join(tmpdir(), 'rerank-daemons-')));
process.env.RERANK_DAEMON_IDLE_SECONDS ??= '60';
process.once('exit', () => stopDaemons(TEST_DAEMON_DIR));

/** Stops the daemons in `dir` (synchronously: it also runs from an exit handler). */
export function stopDaemons(dir: string): void {
  if (!existsSync(dir) || !readdirSync(dir).some((n) => n.endsWith('.sock'))) return;
  execFileSync(process.execPath, [CLI, 'daemon', 'stop'], { env: { ...process.env, RERANK_DAEMON_DIR: dir }, stdio: 'ignore', timeout: 30_000 });
}

export interface TinyParity {
  pairs: [string, string][];
  tokens: { input_ids: number[]; token_type_ids: number[] }[];
  torch_logits: number[];
  st_predict_default: number[];
  st_predict_sigmoid: number[];
  st_predict_identity: number[];
  st_rank: { query: string; documents: string[]; result: { corpus_id: number; score: number }[] };
}

export interface MiniLmParity {
  pairs: [string, string][];
  torch_logits: number[];
  ort_python_logits: number[];
  ort_python_int8_logits: number[];
}

export const readParity = <T>(name: string): T => JSON.parse(readFileSync(join(FIXTURES, 'parity', name), 'utf8')) as T;

/** The MiniLM-L6-shaped fixture (fp32 and int8 ONNX files). Tests copy it before changing anything in it. */
export const MINILM = join(FIXTURES, 'models', 'minilm-l6-ternary');
export function unpackedMiniLm(): string {
  return MINILM;
}

export function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}
