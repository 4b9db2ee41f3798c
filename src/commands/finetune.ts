/**
 * `rerank-mcp finetune`: trains the reranker on the feedback database with the Python script
 * shipped in python/, evaluates it on held-out rerank calls before and after, and (with
 * --promote-to) installs it into a served model directory only when it did not get worse.
 *
 * Exit codes: 0 trained (and promoted if asked), 2 refused input or configuration (nothing
 * trained), 3 trained but not promoted by the gate (the served directory is untouched).
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DB_ENV, resolveDbPath } from '../feedback/db-path.js';
import { isPostgresUrl, openStore } from '../feedback/store.js';
import { DEFAULT_NEGATIVES, DEFAULT_SEED } from '../feedback/training-set.js';
import { RepoCache } from '../hub/cache-layout.js';
import { DEFAULT_MODEL } from '../hub/resolve-model.js';
import { readHubEnv } from '../hub/hub-env.js';
import { parseRepoSpec } from '../hub/repo-spec.js';
import { log } from '../log.js';
import { versionOf } from '../model/model-dir.js';
import { CURRENT, promoteModel, servedModelDir, ServedModelChanged, VERSIONS } from './model-swap.js';

/** Written into every --out by this command: only a directory holding it is ever emptied by a later run. */
export const OUT_MARKER = '.rerank-mcp-finetune';

const PYTHON_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'python');
export const FINETUNE_SCRIPT = join(PYTHON_DIR, 'finetune.py');
export const REQUIREMENTS = join(PYTHON_DIR, 'requirements-finetune.txt');
const PYTHON_MODULES = ['torch', 'transformers', 'sentence_transformers', 'accelerate', 'datasets', 'numpy', 'onnx', 'onnxruntime'];
// The model the server serves by default is also where fine-tuning starts by default.
const DEFAULT_BASE = DEFAULT_MODEL;
/**
 * Default epochs: enough passes for about 250 optimizer steps of 16 pairs, 1 to 10. On the
 * fixtures (scripts/finetune-defaults.ts, docs/finetune.md) 1 epoch over a few hundred pairs
 * gained least, 10 most reliably (20: a similar mean, a worse worst seed); large sets keep
 * the seed's 1 epoch.
 */
export const defaultEpochs = (trainPairs: number): number => Math.min(10, Math.max(1, Math.ceil(4000 / Math.max(1, trainPairs))));

const HELP = `Fine-tune the reranker on recorded feedback, evaluate it on held-out rerank calls, and
optionally promote it into the directory a server is serving.

Usage: rerank-mcp finetune --db PATH --out DIR [--base DIR|REPO] [--promote-to DIR] [--min-gain X]
                           [--epochs N] [--lr X] [--batch-size N] [--negatives N] [--seed N] [--fuse auto|on|off]
                           [--python PATH]
       rerank-mcp finetune --epochs 0 --base DIR|REPO --out DIR      (export a checkpoint as a servable model)

Options:
  --db <path>          feedback database (env ${DB_ENV}); without it and with --epochs 0, export only
  --out <dir>          where the new model is written (checkpoint, tokenizer, onnx/, metrics.json): a new
                       or empty directory, or one an earlier finetune wrote (it holds ${OUT_MARKER})
  --base <dir|repo>    checkpoint to start from (default: the --promote-to directory's own checkpoint
                       when it has one, so training continues from the last fine-tune; else ${DEFAULT_BASE})
  --promote-to <dir>   install the new model there if, on the same held-out calls, its MRR@10 >= the
                       MRR@10 of the model <dir> serves now + min-gain (of the base's when <dir> serves
                       none); <dir>/${CURRENT} is switched to it in one atomic step, the replaced model stays
                       in <dir>/${VERSIONS}/ for rerank-mcp rollback
  --min-gain <x>       required MRR@10 gain on the held-out calls (default 0)
  --epochs <n>         training epochs (default: ceil(4000 / training pairs), from 1 to 10)
  --lr <x>             learning rate (default 5e-5)
  --batch-size <n>     training batch size (default 16)
  --negatives <n>      per labeled rerank call, candidates nobody labeled used as negatives, best-ranked
                       first (default ${DEFAULT_NEGATIVES})
  --seed <n>           seed of the held-out split and of training (default ${DEFAULT_SEED})
  --fuse auto|on|off   ONNX Runtime's transformer fusions (BERT, Qwen2/Qwen3) into onnx/model_fused.onnx,
                       which the server prefers for fp32: auto (default) keeps it only when it runs faster
                       on this CPU with logits within 1e-4 of model.onnx; on keeps it whenever the logits
                       agree; off writes none (docs/decoder-speed.md#fused-graphs)
  --python <path>      Python with the packages of ${REQUIREMENTS}
                       (env RERANK_PYTHON, else python3)

Progress goes to stderr; the last stdout line is one JSON object:
  {"out","train_pairs","eval_queries","before":{"mrr@10","ndcg@10","recall@1","recall@5"},"after":{…},
   "served":{…}|null,"promoted"}   (served: the model --promote-to serves now, on the same held-out calls)
Exit codes: 0 trained (and promoted if asked), 2 refused input or configuration, 3 not promoted by the gate.
`;

class Refusal extends Error {}

type Metrics = Record<'mrr@10' | 'ndcg@10' | 'recall@1' | 'recall@5', number | null>;

interface Options {
  db: string | undefined;
  out: string;
  base: string | undefined;
  promoteTo: string | undefined;
  minGain: number;
  /** undefined: chosen from the size of the training set. */
  epochs: number | undefined;
  lr: number;
  batchSize: number;
  negatives: number;
  seed: number;
  fuse: 'auto' | 'on' | 'off';
  python: string;
}

export async function runFinetune(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const options = parseOptions(argv, env);
    if (!options) {
      process.stdout.write(HELP);
      return 0;
    }
    return await finetune(options, env);
  } catch (err) {
    log(`error: ${(err as Error).message.replace(/\s*\n\s*/g, ' ')}`);
    return 2;
  }
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | null {
  const str = { type: 'string' } as const;
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { db: str, out: str, base: str, 'promote-to': str, 'min-gain': str, epochs: str, lr: str, 'batch-size': str, negatives: str, seed: str, fuse: str, python: str, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    throw new Refusal(`${(err as Error).message} (see rerank-mcp finetune --help)`);
  }
  if (values.help) return null;
  const num = (name: keyof typeof values, fallback: number, check: (n: number) => boolean, what: string): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (String(raw).trim() === '' || !Number.isFinite(n) || !check(n)) throw new Refusal(`--${name}: expected ${what}, got "${String(raw)}"`);
    return n;
  };
  const epochs = values.epochs === undefined ? undefined : num('epochs', 0, (n) => n >= 0, 'a number >= 0');
  if (!values.out) throw new Refusal('--out DIR is required: where the new model is written (see rerank-mcp finetune --help)');
  // Export-only needs no database; otherwise --db, then the env, then the default path, as `feedback` does.
  const db = values.db ?? (epochs === 0 && !values['promote-to'] ? undefined : resolveDbPath(undefined, env));
  return {
    db,
    out: resolve(values.out),
    base: values.base,
    promoteTo: values['promote-to'] ? resolve(values['promote-to']) : undefined,
    minGain: num('min-gain', 0, () => true, 'a number'),
    epochs,
    lr: num('lr', 5e-5, (n) => n > 0, 'a number > 0'),
    batchSize: num('batch-size', 16, (n) => Number.isInteger(n) && n > 0, 'a whole number > 0'),
    negatives: num('negatives', DEFAULT_NEGATIVES, (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0'),
    seed: num('seed', DEFAULT_SEED, (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0'),
    fuse: fuseSetting(values.fuse),
    python: values.python ?? (env.RERANK_PYTHON || 'python3'),
  };
}

function fuseSetting(raw: string | undefined): Options['fuse'] {
  if (raw === undefined) return 'auto';
  if (raw === 'auto' || raw === 'on' || raw === 'off') return raw;
  throw new Refusal(`--fuse: expected auto, on or off, got "${raw}"`);
}

async function finetune(o: Options, env: NodeJS.ProcessEnv): Promise<number> {
  if (o.db === undefined && o.promoteTo) throw new Refusal('--promote-to needs --db: the gate compares the held-out metrics of the served model and the new one');
  // Compared after resolving symlinks: --out is emptied below, and must not reach anything else.
  const out = realish(o.out);
  if (o.promoteTo && overlaps(out, realish(o.promoteTo))) throw new Refusal(`--out ${o.out} and --promote-to ${o.promoteTo} are the same directory or one holds the other${out !== o.out ? ` (--out resolves to ${out})` : ''}: name a separate --out; the new model is written there, then installed into --promote-to if it passes the gate`);
  if (o.db !== undefined && !isPostgresUrl(o.db) && overlaps(out, realish(o.db))) throw new Refusal(`--out ${o.out} holds the feedback database ${o.db}: name a separate directory for the new model`);
  // The model served now, evaluated beside the candidate; read once, so training and the gate see the same version.
  const served = o.promoteTo ? servedModelDir(o.promoteTo) : undefined;
  const servedServable = served !== undefined && existsSync(served) && readdirSafe(served).length > 0 && hasOnnx(served);

  await checkPython(o.python);
  const base = await resolveBase(o, env);
  if (existsSync(base.path) && overlaps(out, realish(base.path))) {
    throw new Refusal(`--out ${o.out} and the base checkpoint ${base.path} are the same directory or one holds the other (after resolving symlinks: ${out} and ${realish(base.path)}): name a separate --out`);
  }
  const set = o.db === undefined ? undefined : await readTrainingSet(o.db, o.negatives, o.seed);
  prepareOut(o.out, out);

  const work = mkdtempSync(join(tmpdir(), 'rerank-finetune-'));
  try {
    const epochs = o.epochs ?? defaultEpochs(set?.train.length ?? 0);
    if (o.epochs === undefined) log(`epochs: ${epochs} (the default for ${set?.train.length ?? 0} training pairs: ceil(4000 / pairs), from 1 to 10)`);
    const args = [FINETUNE_SCRIPT, '--base', base.path, '--out', out, '--epochs', String(epochs), '--lr', String(o.lr), '--batch-size', String(o.batchSize), '--seed', String(o.seed), '--fuse', o.fuse];
    if (set) {
      log(`training set from ${o.db}: ${set.train.length} pairs (${set.positives} relevant, ${set.negatives} not), ${set.eval.length} held-out rerank calls over ${set.evalQueries} of ${set.labeledQueries} labeled queries`);
      writeFileSync(join(work, 'train.jsonl'), set.train.map((r) => JSON.stringify(r) + '\n').join(''));
      writeFileSync(join(work, 'eval.jsonl'), set.eval.map((c) => JSON.stringify(c) + '\n').join(''));
      args.push('--train', join(work, 'train.jsonl'), '--eval', join(work, 'eval.jsonl'));
      if (servedServable) args.push('--served', served!);
    } else {
      log(`export only: ${base.path} -> ${o.out}`);
    }
    const code = await runPython(o.python, args, { ...env, ...(base.offline ? { HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' } : {}), HF_DATASETS_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false', PYTHONUNBUFFERED: '1' });
    if (code !== 0) throw new Refusal(`${FINETUNE_SCRIPT} failed (exit ${code}); its output is above`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { before?: Metrics & { queries: number }; after?: Metrics & { queries: number }; served?: Metrics; train_pairs: number };
  const pick = (m: Metrics | undefined) => (m ? { 'mrr@10': m['mrr@10'], 'ndcg@10': m['ndcg@10'], 'recall@1': m['recall@1'], 'recall@5': m['recall@5'] } : null);
  const before = pick(metrics.before);
  const after = pick(metrics.after);
  const servedMetrics = pick(metrics.served);
  const result = { out: o.out, train_pairs: metrics.train_pairs ?? 0, eval_queries: metrics.before?.queries ?? 0, before, after, served: servedMetrics, promoted: false };

  let code = 0;
  if (o.promoteTo) {
    if (servedServable && !servedMetrics) throw new Refusal(`${FINETUNE_SCRIPT} did not evaluate the served model ${served} (no "served" in ${join(out, 'metrics.json')}): nothing promoted`);
    // The bar is the model served now; the base only when --promote-to serves nothing yet.
    const [bar, barName] = servedMetrics ? [servedMetrics, `the served model ${served}`] : [before, 'the base (nothing is served there yet)'];
    const gain = (after?.['mrr@10'] ?? 0) - (bar?.['mrr@10'] ?? 0);
    if (bar && after && after['mrr@10'] !== null && bar['mrr@10'] !== null && after['mrr@10'] >= bar['mrr@10'] + o.minGain) {
      try {
        promoteModel(out, o.promoteTo, { expectServing: served });
      } catch (err) {
        if (!(err instanceof ServedModelChanged)) throw err;
        log(`not promoted: ${err.message}`);
        process.stdout.write(JSON.stringify(result) + '\n');
        return 3;
      }
      result.promoted = true;
      log(`promoted: MRR@10 ${fmt(bar['mrr@10'])} (${barName}) -> ${fmt(after['mrr@10'])} on ${result.eval_queries} held-out queries; ${o.promoteTo} now serves the new model (rerank-mcp rollback ${o.promoteTo} puts the previous one back)`);
    } else {
      log(`not promoted: MRR@10 ${fmt(bar?.['mrr@10'])} (${barName}) -> ${fmt(after?.['mrr@10'])} (gain ${fmt(gain)}) on ${result.eval_queries} held-out queries is below --min-gain ${o.minGain}; ${o.promoteTo} is unchanged, the new model is in ${o.out}`);
      code = 3;
    }
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  return code;
}

/**
 * A fresh --out, or the output of an earlier finetune (its contents replaced, so no stale file can
 * ride along into a promotion). Anything else that is not empty is refused untouched: only a
 * directory holding our marker is ever emptied. `real`: --out with symlinks resolved.
 */
function prepareOut(named: string, real: string): void {
  if (existsSync(real)) {
    if (!statSync(real).isDirectory()) throw new Refusal(`--out ${named} is a file: name a directory for the new model`);
    const entries = readdirSync(real);
    if (versionOf(real) || entries.includes(VERSIONS)) {
      throw new Refusal(`--out ${named} is a served model directory (its versions in ${join(named, VERSIONS)} are what rollback needs): name a new or empty directory for the new model, and --promote-to ${named} to serve it`);
    }
    if (entries.length > 0) {
      if (!entries.includes(OUT_MARKER) || !lstatSync(join(real, OUT_MARKER)).isFile()) {
        throw new Refusal(`--out ${named} is not empty and was not written by rerank-mcp finetune (it has no ${OUT_MARKER}): nothing in it was touched; name a new or empty directory`);
      }
      for (const entry of entries) rmSync(join(real, entry), { recursive: true, force: true });
    }
  }
  mkdirSync(real, { recursive: true });
  writeFileSync(join(real, OUT_MARKER), 'Written by rerank-mcp finetune: a later finetune --out naming this directory replaces its contents.\n');
}

/** The absolute path with every symlink of its existing part resolved (the rest as named). */
function realish(path: string): string {
  const rest: string[] = [];
  let at = resolve(path);
  for (;;) {
    try {
      return join(realpathSync(at), ...rest);
    } catch {
      const up = dirname(at);
      if (up === at) return resolve(path);
      rest.unshift(basename(at));
      at = up;
    }
  }
}

/** The same directory, or one inside the other. */
const overlaps = (a: string, b: string): boolean => a === b || a.startsWith(b.endsWith(sep) ? b : b + sep) || b.startsWith(a.endsWith(sep) ? a : a + sep);

const readdirSafe = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

const hasOnnx = (dir: string): boolean => ['onnx/model.onnx', 'model.onnx', 'onnx/model_quantized.onnx', 'model_quantized.onnx'].some((f) => existsSync(join(dir, f)));

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : v.toFixed(4));

async function readTrainingSet(dbPath: string, negatives: number, seed: number) {
  if (!isPostgresUrl(dbPath) && !existsSync(dbPath)) throw new Refusal(`no feedback database at ${dbPath}: pass --db PATH (or set ${DB_ENV}) to the database the server records feedback in`);
  const store = await openStore(dbPath);
  try {
    const set = await store.trainingSet({ negatives, seed });
    if (set.problem) throw new Refusal(`nothing trained: ${set.problem}`);
    return set;
  } finally {
    await store.close();
  }
}

const pipInstall = (python: string) => `${python} -m pip install -r ${REQUIREMENTS}`;

/** Fast (no import): find_spec only looks the packages up, so a missing one is named in a second, not after torch loads. */
async function checkPython(python: string): Promise<void> {
  const probe = `import importlib.util as u, sys; print(",".join(m for m in ${JSON.stringify(PYTHON_MODULES)} if u.find_spec(m) is None)); print("%d.%d" % sys.version_info[:2])`;
  const { code, stdout, error } = await capture(python, ['-c', probe]);
  if (error) throw new Refusal(`cannot run Python "${python}" (${error}): pass --python PATH or set RERANK_PYTHON to a Python 3 where you ran pip install -r ${REQUIREMENTS}`);
  if (code !== 0) throw new Refusal(`"${python}" is not a working Python 3 (exit ${code}): pass --python PATH or set RERANK_PYTHON; it needs pip install -r ${REQUIREMENTS}`);
  const missing = stdout.split('\n')[0].trim();
  if (missing) throw new Refusal(`${python} lacks the Python package(s) ${missing.split(',').join(', ')}: run ${pipInstall(python)}`);
}

function capture(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; error?: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('error', (err) => done({ code: null, stdout, error: (err as NodeJS.ErrnoException).code ?? err.message }));
    child.on('close', (code) => done({ code, stdout }));
  });
}

/**
 * Python's output is progress: it goes to our stderr, so stdout keeps only the result line.
 * Its stdin is a pipe we never write to: when this process dies in any way (SIGKILL included,
 * which no handler sees) the kernel closes it, and python/finetune.py --exit-with-parent exits.
 */
function runPython(python: string, args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((done, fail) => {
    const child = spawn(python, [...args, '--exit-with-parent'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    child.stdout.pipe(process.stderr, { end: false });
    child.stderr.pipe(process.stderr, { end: false });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('error', fail);
    child.on('close', (code) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      done(code);
    });
  });
}

const hasCheckpoint = (dir: string): boolean =>
  existsSync(join(dir, 'config.json')) && ['model.safetensors', 'pytorch_model.bin', 'model.safetensors.index.json'].some((f) => existsSync(join(dir, f)));

/**
 * The checkpoint to start from, as a path or repo id Python loads without touching the network
 * when it is local or cached (HF_HUB_OFFLINE), so an offline machine gets one line, not
 * a minute of retries.
 */
async function resolveBase(o: Options, env: NodeJS.ProcessEnv): Promise<{ path: string; offline: boolean }> {
  let spec = o.base;
  // The version served now, not DIR/current: a promotion switching it meanwhile cannot change the base under Python.
  if (spec === undefined && o.promoteTo && hasCheckpoint(servedModelDir(o.promoteTo))) {
    log(`base: the checkpoint served from ${o.promoteTo} (fine-tuning continues from it)`);
    return { path: servedModelDir(o.promoteTo), offline: true };
  }
  spec ??= DEFAULT_BASE;
  if (existsSync(spec) && statSync(spec).isDirectory()) {
    const dir = servedModelDir(spec);
    if (!hasCheckpoint(dir)) throw new Refusal(`--base ${dir} holds no PyTorch checkpoint (config.json with model.safetensors or pytorch_model.bin); an ONNX-only directory cannot be trained: pass --base with the checkpoint it was exported from`);
    return { path: dir, offline: true };
  }
  const repo = parseRepoSpec(spec);
  if (!repo) throw new Refusal(`--base ${spec}: no such directory, and not a Hugging Face repo id (owner/name)`);
  const hub = readHubEnv(env);
  const cache = new RepoCache(hub.cacheDir, repo.repo);
  const commit = cache.readRef(repo.revision);
  const cached = commit !== undefined && cache.fileState(commit, 'config.json') === 'present'
    && ['model.safetensors', 'pytorch_model.bin'].some((f) => cache.fileState(commit, f) === 'present');
  if (cached) return { path: repo.revision === 'main' ? repo.repo : cache.snapshotDir(commit!), offline: true };
  const how = o.base === undefined
    ? `no --base given${o.promoteTo ? ` and ${o.promoteTo} holds no checkpoint` : ''}, and the default base ${DEFAULT_BASE} is not in the Hugging Face cache (${hub.cacheDir})`
    : `${spec} is not in the Hugging Face cache (${hub.cacheDir})`;
  if (hub.offline) throw new Refusal(`${how} and HF_HUB_OFFLINE is set: pass --base DIR with a local checkpoint`);
  // Python would download it; left to itself, an unreachable Hub costs about a minute of retries first.
  try {
    await fetch(`${hub.endpoint}/api/models/${repo.repo}`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new Refusal(`${how}, and ${hub.endpoint} cannot be reached to download it (${(err as Error).message}): pass --base DIR with a local checkpoint`);
  }
  return { path: spec, offline: false };
}
