/** Paths to ../shared/fixtures, read in place; the packed full-size model is unpacked into the ignored .cache/. */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = resolve(REPO_ROOT, '..', 'shared', 'fixtures');
export const TINY_CE = join(FIXTURES, 'models', 'tiny-ce');
export const CLI = join(REPO_ROOT, 'dist', 'cli.js');

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

/** The MiniLM-L6-shaped fixture, unpacked once into .cache/models (ignored by git). */
export function unpackedMiniLm(): string {
  const source = join(FIXTURES, 'models', 'minilm-l6-ternary');
  const target = join(REPO_ROOT, '.cache', 'models', 'minilm-l6-ternary');
  mkdirSync(join(target, 'onnx'), { recursive: true });
  for (const name of readdirSync(source)) {
    if (/\.(json|txt)$/.test(name) && !existsSync(join(target, name))) copyFileSync(join(source, name), join(target, name));
  }
  for (const name of ['model.onnx', 'model_quantized.onnx']) {
    const out = join(target, 'onnx', name);
    if (existsSync(out)) continue;
    execFileSync('sh', ['-c', `xz -dc "$1" > "$2.partial"`, 'sh', join(source, 'onnx', `${name}.xz`), out]);
    renameSync(`${out}.partial`, out);
  }
  return target;
}

export function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}
