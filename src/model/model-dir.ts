/**
 * A model directory in Hugging Face layout, resolved and checked before anything is loaded,
 * so that a wrong path fails at start-up with one line naming the file and what was expected.
 */
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { log } from '../log.js';

export type Variant = 'fp32' | 'int8';

/**
 * A directory that `finetune --promote-to` manages holds whole models in DIR/.versions/<id>/ and
 * serves the one the symlink DIR/current points at (src/commands/model-swap.ts): a promotion
 * or rollback is one rename of that symlink, so resolving through it always gives one whole model.
 */
export const CURRENT = 'current';
export const VERSIONS = '.versions';

/** The version DIR/current points at, or undefined when DIR is a plain model directory. */
export function versionOf(dir: string): string | undefined {
  const link = join(dir, CURRENT);
  try {
    if (!lstatSync(link).isSymbolicLink()) return undefined;
    const target = readlinkSync(link);
    return target.startsWith(VERSIONS + '/') ? basename(target) : undefined;
  } catch {
    return undefined;
  }
}

/** The directory whose files are the served model: DIR's current version, or DIR itself. */
export function servedModelDir(dirArg: string): string {
  const dir = resolve(dirArg);
  const version = versionOf(dir);
  return version ? join(dir, VERSIONS, version) : dir;
}

export interface ModelFiles {
  /** The directory as the user named it (what a server watches for promotions). */
  root: string;
  /** Where the files are read: root itself, or the version root/current points at. */
  dir: string;
  variant: Variant;
  onnxPath: string;
  /** The exported graph onnxPath stands in for: itself, or model.onnx when the fused graph beside it is served. */
  plainOnnxPath: string;
  configPath: string;
  tokenizerPath: string;
  tokenizerConfigPath: string | null;
  /** The graph's weights stored beside it (ONNX external data), read with it and fingerprinted with it. */
  externalDataPaths: string[];
}

export class ModelLoadError extends Error {}

// The names Hub repos give their exports: Optimum and transformers.js write model_quantized.onnx,
// onnx-community repos also model_int8.onnx / model_uint8.onnx.
export const ONNX_CANDIDATES: Record<Variant, string[]> = {
  fp32: ['onnx/model.onnx', 'model.onnx'],
  int8: ['onnx/model_quantized.onnx', 'model_quantized.onnx', 'onnx/model_int8.onnx', 'model_int8.onnx', 'onnx/model_uint8.onnx', 'model_uint8.onnx'],
};

/**
 * Where exporters put the weights of a graph over 2 GB (or saved with external data): next to it
 * as `<file>_data` (torch.onnx, Optimum) or `<file>.data` (onnx.save_model's usual name).
 */
export function externalDataNames(onnxPath: string): string[] {
  return [`${onnxPath}_data`, `${onnxPath}.data`];
}

export function resolveModelFiles(dirArg: string, variant: Variant): ModelFiles {
  const root = resolve(dirArg);
  // The pointer is read once: every file below comes from that one version, even if a promotion switches meanwhile.
  const dir = servedModelDir(root);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    if (dir !== root) throw new ModelLoadError(`${join(root, CURRENT)} points at ${dir}, which is missing: run rerank-mcp rollback ${root}, or promote a model into it again`);
    throw new ModelLoadError(`model directory not found: ${dir} (expected a directory with config.json, tokenizer.json and onnx/model.onnx)`);
  }
  const need = (name: string): string => {
    const path = join(dir, name);
    if (!existsSync(path)) throw new ModelLoadError(`model file missing: ${path} (a cross-encoder directory needs config.json and tokenizer.json)`);
    return path;
  };
  const candidates = ONNX_CANDIDATES[variant];
  const plainPath = candidates.map((c) => join(dir, c)).find((p) => existsSync(p));
  if (!plainPath) {
    throw new ModelLoadError(`ONNX file missing for variant ${variant}: looked for ${candidates.map((c) => join(dir, c)).join(', ')}`);
  }
  const onnxPath = variant === 'fp32' ? fusedGraph(plainPath) ?? plainPath : plainPath;
  const tokenizerConfig = join(dir, 'tokenizer_config.json');
  return {
    root,
    dir,
    variant,
    onnxPath,
    plainOnnxPath: plainPath,
    configPath: need('config.json'),
    tokenizerPath: need('tokenizer.json'),
    tokenizerConfigPath: existsSync(tokenizerConfig) ? tokenizerConfig : null,
    externalDataPaths: externalDataNames(onnxPath).filter((p) => existsSync(p)),
  };
}

/**
 * python/fuse_graph.py writes onnx/model_fused.onnx beside model.onnx only where ONNX Runtime's transformer
 * fusions measured faster with the same logits, so it is served in its place. One older than model.onnx was
 * fused from an earlier export (the file was replaced since) and would score other weights: it is skipped.
 */
export const FUSED_GRAPH_FILE = 'model_fused.onnx';

function fusedGraph(plainPath: string): string | undefined {
  const fused = join(dirname(plainPath), FUSED_GRAPH_FILE);
  if (!existsSync(fused)) return undefined;
  if (statSync(fused).mtimeMs < statSync(plainPath).mtimeMs) {
    log(`warning: ${fused} is older than ${plainPath}, so it was fused from an earlier export: serving ${basename(plainPath)}; run python python/fuse_graph.py ${dirname(dirname(plainPath))} again, or delete it`);
    return undefined;
  }
  return fused;
}

export function readJsonFile(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelLoadError(`cannot read ${path}: ${(err as Error).message}`);
  }
}
