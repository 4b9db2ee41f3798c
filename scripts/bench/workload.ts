/**
 * The benchmark's inputs: the fixture model (copied into .cache on first use) and a
 * deterministic rerank workload built from the agro triplets.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Call } from './protocol.js';

export const DOCS_PER_CALL = 20;

interface Triplet {
  query: string;
  positive_text: string;
  positive_doc_id: string;
  negative_texts: string[];
}

/**
 * Makes sure `target` holds the fixture model: json/txt and onnx/*.onnx files copied, onnx/*.onnx.xz
 * decompressed with `xz -dc` (through a temporary file, so an interrupted run never
 * leaves a truncated model behind). Returns true when something was unpacked.
 */
export function ensureModel(source: string, target: string): boolean {
  const onnxDir = join(target, 'onnx');
  const onnxFiles = existsSync(join(source, 'onnx')) ? readdirSync(join(source, 'onnx')) : [];
  const wanted = onnxFiles.filter((f) => f.endsWith('.onnx.xz'));
  const plain = onnxFiles.filter((f) => f.endsWith('.onnx'));
  const complete =
    existsSync(join(target, 'config.json')) &&
    existsSync(join(target, 'tokenizer.json')) &&
    wanted.every((f) => existsSync(join(onnxDir, f.slice(0, -'.xz'.length)))) &&
    plain.every((f) => existsSync(join(onnxDir, f))) &&
    existsSync(join(onnxDir, 'model.onnx'));
  if (complete) return false;
  if (!existsSync(source)) {
    throw new Error(`model ${target} is missing and the fixture ${source} to unpack it from does not exist`);
  }
  mkdirSync(onnxDir, { recursive: true });
  for (const name of readdirSync(source)) {
    if (/\.(json|txt)$/.test(name) && !existsSync(join(target, name))) copyFileSync(join(source, name), join(target, name));
  }
  for (const name of plain) if (!existsSync(join(onnxDir, name))) copyFileSync(join(source, 'onnx', name), join(onnxDir, name));
  for (const name of wanted) {
    const out = join(onnxDir, name.slice(0, -'.xz'.length));
    if (existsSync(out)) continue;
    const tmp = `${out}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w');
    const r = spawnSync('xz', ['-dc', join(source, 'onnx', name)], { stdio: ['ignore', fd, 'inherit'] });
    closeSync(fd);
    if (r.error || r.status !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`xz -dc ${join(source, 'onnx', name)} failed: ${r.error?.message ?? `exit ${r.status}`}`);
    }
    renameSync(tmp, out);
  }
  return true;
}

export function readTriplets(path: string): Triplet[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Triplet);
}

/**
 * One call per triplet: its positive, its negatives, then the positives of the following
 * triplets (round-robin, wrapping around, skipping texts already present) up to `size`.
 */
export function callFor(triplets: readonly Triplet[], index: number, size = DOCS_PER_CALL): Call {
  const own = triplets[index];
  const documents: string[] = [];
  const add = (text: string) => {
    if (documents.length < size && !documents.includes(text)) documents.push(text);
  };
  add(own.positive_text);
  own.negative_texts.forEach(add);
  // Positives of the next triplets first, then their negatives, should the positives run out.
  for (let k = 0; documents.length < size && k <= 8; k++) {
    for (let step = 1; step < triplets.length && documents.length < size; step++) {
      const other = triplets[(index + step) % triplets.length];
      const text = k === 0 ? other.positive_text : other.negative_texts[k - 1];
      if (text !== undefined) add(text);
    }
  }
  return { id: index, query: own.query, documents };
}

/** `count` triplets spread evenly over the file (all of them when count >= length). */
export function pickQueries(total: number, count: number): number[] {
  if (count >= total) return Array.from({ length: total }, (_, i) => i);
  return Array.from({ length: count }, (_, k) => Math.floor((k * total) / count));
}

/** The same documents under a query no workload call uses, so a server-side cache cannot serve it. */
export function renamed(call: Call, tag: string, id: number): Call {
  return { id, query: `${call.query} (${tag})`, documents: call.documents };
}

/** Splits `items` into `parts` contiguous chunks whose sizes differ by at most one. */
export function chunk<T>(items: readonly T[], parts: number): T[][] {
  const out: T[][] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const size = Math.floor(items.length / parts) + (p < items.length % parts ? 1 : 0);
    out.push(items.slice(start, start + size));
    start += size;
  }
  return out.filter((c) => c.length > 0);
}
