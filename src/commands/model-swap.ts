/**
 * Replaces the files of a served model directory with another model's, keeping the replaced
 * model in DIR/.previous for `rerank-mcp rollback`.
 *
 * A running server watches DIR and DIR/onnx (not deeper) and reloads after 1 s without a
 * change, and a reload reads whatever files are there at that moment. So everything slow
 * (copying the new model, and the copy of the current one kept as .previous) happens in
 * staging folders beside DIR, where the watcher sees nothing; then each file is renamed into
 * place (atomic: a reader sees the old file or the new one, never a partial one, and no file is
 * ever missing), the ONNX files last with model.onnx the very last, so the final event, and
 * the reload 1 s after it, comes when the whole new model is in place. Files the new model
 * lacks are removed only after that.
 */
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const PREVIOUS = '.previous';

/** The model's files, relative to `dir`: hidden entries (.previous, staging) are not part of it. */
export function modelFiles(dir: string, sub = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const rel = sub ? join(sub, entry.name) : entry.name;
    if (entry.isDirectory()) out.push(...modelFiles(dir, rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

/** Non-ONNX files first, then ONNX files, model.onnx (the default variant) the very last. */
function installOrder(files: string[]): string[] {
  const rank = (f: string) => (!f.endsWith('.onnx') ? 0 : basename(f) === 'model.onnx' ? 2 : 1);
  return [...files].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** A copy whose data is on disk before anything renames it into view. */
function copyDurably(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  const fd = openSync(to, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some platforms cannot fsync a directory; the renames are still atomic
  }
}

/**
 * Installs the model in `source` into `target` (created if missing). The current files of
 * `target`, if any, become target/.previous (replacing an older one). Returns the files installed.
 */
export function installModel(source: string, target: string): string[] {
  const incoming = modelFiles(source);
  if (!incoming.some((f) => f.endsWith('.onnx'))) throw new Error(`${source} holds no ONNX file: not a servable model`);
  mkdirSync(target, { recursive: true });
  const current = modelFiles(target);
  const stamp = `${process.pid}-${Date.now()}`;
  const stageNew = join(dirname(target), `.${basename(target)}.incoming-${stamp}`);
  const stageOld = join(dirname(target), `.${basename(target)}.previous-${stamp}`);
  try {
    for (const f of incoming) copyDurably(join(source, f), join(stageNew, f));
    if (current.length > 0) for (const f of current) copyDurably(join(target, f), join(stageOld, f));

    for (const f of installOrder(incoming)) {
      mkdirSync(dirname(join(target, f)), { recursive: true });
      renameSync(join(stageNew, f), join(target, f));
    }
    const keep = new Set(incoming);
    for (const f of current) if (!keep.has(f)) rmSync(join(target, f), { force: true });
    syncDir(join(target, 'onnx'));
    syncDir(target);

    if (current.length > 0) {
      const previous = join(target, PREVIOUS);
      const trash = `${stageOld}.old`;
      if (existsSync(previous)) renameSync(previous, trash);
      renameSync(stageOld, previous);
      rmSync(trash, { recursive: true, force: true });
      syncDir(target);
    }
    return incoming;
  } finally {
    rmSync(stageNew, { recursive: true, force: true });
    rmSync(stageOld, { recursive: true, force: true });
  }
}

export function hasPrevious(target: string): boolean {
  const previous = join(target, PREVIOUS);
  return existsSync(previous) && statSync(previous).isDirectory() && modelFiles(previous).some((f) => f.endsWith('.onnx'));
}
