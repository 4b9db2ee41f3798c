/**
 * --model as a name: a local directory is used as it is; `owner/name[@revision]` is fetched
 * from the Hugging Face Hub into the shared HF cache, only the files the server loads.
 *
 * Offline first: when refs/<revision> (or the commit itself) names a snapshot that already
 * holds every needed file, that snapshot is used without any request, even for a branch such
 * as main. A server start must not depend on the network once the model is there; the price is
 * that a moved branch is only picked up after the cache entry is removed, or with @<commit>.
 */
import { existsSync, statSync } from 'node:fs';
import { modelInfo, pathsInfo, HubApiError, type PathInfo } from '@huggingface/hub';
import { externalDataNames, type Variant } from '../model/model-dir.js';
import { RepoCache } from './cache-layout.js';
import { downloadBlob, isAbort, type HubAccess, type ProgressEvent, type RemoteFile } from './download-blob.js';
import { ModelFetchError } from './errors.js';
import { readHubEnv, type HubEnv } from './hub-env.js';
import { DEFAULT_REVISION, isCommit, parseRepoSpec, type RepoSpec } from './repo-spec.js';

export { ModelFetchError } from './errors.js';

// Defined without imports so that the stdio shim can name the default model without loading the Hub client.
import { DEFAULT_MODEL, DEFAULT_MODEL_MIRROR } from '../defaults.js';
export { DEFAULT_MODEL, DEFAULT_MODEL_MIRROR };

export const ONNX_FILE: Record<Variant, string> = { fp32: 'onnx/model.onnx', int8: 'onnx/model_quantized.onnx' };
/** The ONNX files a repo may hold for a variant, preferred first (see model-dir.ts ONNX_CANDIDATES). */
export const ONNX_REPO_FILES: Record<Variant, string[]> = { fp32: ['onnx/model.onnx'], int8: ['onnx/model_quantized.onnx', 'onnx/model_int8.onnx', 'onnx/model_uint8.onnx'] };

export interface ResolveOptions {
  variant: Variant;
  env?: NodeJS.ProcessEnv;
  onProgress?: (p: ProgressEvent) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ResolvedModel {
  dir: string;
  repo?: string;
  revision?: string;
  commit?: string;
  /** True when no file had to be downloaded (a local directory, or everything already cached). */
  fromCache: boolean;
}

interface Wanted {
  path: string;
  required: boolean;
  /** One of the variant's ONNX names: the first the repo has is the one needed (with its external data). */
  onnx?: boolean;
  /** External data of the ONNX file `of`: fetched when the repo has it and `of` is the chosen graph. */
  dataOf?: string;
}

/** What CrossEncoder.load reads, and nothing else: no weights in other formats, no vocab.txt. */
export function wantedFiles(variant: Variant): Wanted[] {
  return [
    { path: 'config.json', required: true },
    { path: 'tokenizer.json', required: true },
    { path: 'tokenizer_config.json', required: false },
    { path: 'special_tokens_map.json', required: false },
    ...ONNX_REPO_FILES[variant].flatMap((onnx) => [
      { path: onnx, required: false, onnx: true },
      ...externalDataNames(onnx).map((path) => ({ path, required: false, dataOf: onnx })),
    ]),
  ];
}

/**
 * The files a snapshot needs, given what is known of each path: the required ones, the first
 * ONNX candidate that is not absent, and that graph's external data; `undefined` while the choice
 * of graph waits on a path whose state is unknown.
 */
function neededFiles(wanted: Wanted[], state: (path: string) => 'present' | 'absent' | 'unknown'): { needed: Wanted[]; onnx: string | null } | undefined {
  let onnx: string | null = null;
  for (const w of wanted.filter((x) => x.onnx)) {
    const s = state(w.path);
    if (s === 'unknown') return undefined;
    if (s === 'present') {
      onnx = w.path;
      break;
    }
  }
  const needed = wanted.filter((w) => (!w.onnx && !w.dataOf) || w.path === onnx || (onnx !== null && w.dataOf === onnx));
  return { needed, onnx };
}

export async function resolveModel(spec: string | undefined, options: ResolveOptions): Promise<ResolvedModel> {
  const log = options.log ?? (() => {});
  if (spec !== undefined && existsSync(spec)) {
    if (!statSync(spec).isDirectory()) throw new ModelFetchError(`--model ${spec} is a file; it takes a model directory or a Hugging Face repo id (owner/name[@revision])`);
    return { dir: spec, fromCache: true };
  }
  const candidates: RepoSpec[] = spec === undefined ? [DEFAULT_MODEL, DEFAULT_MODEL_MIRROR].map((repo) => ({ repo, revision: DEFAULT_REVISION })) : [parseOrThrow(spec)];
  const hub = readHubEnv(options.env ?? process.env);
  const wanted = wantedFiles(options.variant);
  const onnx = ONNX_FILE[options.variant];
  const last = candidates.length - 1;
  const useMirror = (c: RepoSpec) => log(`model: ${c.repo}@${c.revision} has no ${onnx}; using its ONNX mirror ${candidates[last].repo}`);

  // Cache pass: no request at all when a snapshot already has every file.
  let start = 0;
  for (const [i, c] of candidates.entries()) {
    const cache = new RepoCache(hub.cacheDir, c.repo);
    const state = cachedState(cache, c.revision, wanted, hub.offline);
    if (state.complete) {
      log(`model: ${c.repo}@${c.revision} (${state.commit.slice(0, 12)}) from the cache ${cache.snapshotDir(state.commit)}`);
      return { dir: cache.snapshotDir(state.commit), repo: c.repo, revision: c.revision, commit: state.commit, fromCache: true };
    }
    if (i === last) break;
    if (state.missing.includes(onnx)) useMirror(c);
    else if (hub.offline) log(`model: ${c.repo}@${c.revision} is not in the cache and HF_HUB_OFFLINE is set; trying its mirror ${candidates[last].repo}`);
    else break;
    start = i + 1;
  }
  if (hub.offline) throw offlineError(candidates, hub, options.variant);

  const access: HubAccess = {
    hubUrl: hub.endpoint,
    accessToken: checkedToken(hub.token),
    fetch: (input, init) => fetch(input, { ...init, signal: options.signal }),
  };
  for (let i = start; ; i++) {
    const c = candidates[i];
    const fetched = await withHubErrors(c, spec, hub, () => fetchSnapshot(new RepoCache(hub.cacheDir, c.repo), c, wanted, access, options, log));
    if (fetched.missing.length === 0) return { dir: fetched.dir, repo: c.repo, revision: c.revision, commit: fetched.commit, fromCache: fetched.downloaded === 0 };
    if (i < last && fetched.missing.includes(onnx)) {
      useMirror(c);
      continue;
    }
    throw new ModelFetchError(`${c.repo}@${c.revision} has no ${fetched.missing.join(' or ')}; pick a repo with ONNX weights for --variant ${options.variant}, or pass --model <dir> with a local export`);
  }
}

/** The repo id in --model; throws the one-line error for a name that is neither a directory nor a repo id. */
export function parseOrThrow(spec: string): RepoSpec {
  const parsed = parseRepoSpec(spec);
  if (!parsed) throw new ModelFetchError(`--model ${spec}: no such directory, and not a Hugging Face repo id (owner/name or owner/name@revision)`);
  return parsed;
}

interface CachedState {
  commit: string;
  complete: boolean;
  /** Required files the Hub said the commit lacks. */
  missing: string[];
}

/**
 * `offline`: an external-data file nobody recorded as present or absent does not make the
 * snapshot incomplete. Caches filled by other tools (Python's huggingface_hub) record no absent
 * files, and offline nothing could be asked; a graph that does need the file fails its load,
 * naming it.
 */
function cachedState(cache: RepoCache, revision: string, wanted: Wanted[], offline = false): CachedState {
  const commit = cache.readRef(revision);
  if (!commit) return { commit: '', complete: false, missing: [] };
  const choice = neededFiles(wanted, (path) => cache.fileState(commit, path));
  const states = wanted.map((w) => ({ ...w, state: cache.fileState(commit, w.path) }));
  const missing = states.filter((s) => s.required && s.state === 'absent').map((s) => s.path);
  if (choice && choice.onnx === null) missing.push(wanted.find((w) => w.onnx)!.path);
  const complete = choice !== undefined && missing.length === 0 && choice.needed.every((w) => cache.fileState(commit, w.path) !== 'unknown' || (offline && w.dataOf !== undefined));
  return { commit, complete, missing };
}

interface Fetched {
  commit: string;
  dir: string;
  missing: string[];
  downloaded: number;
}

async function fetchSnapshot(cache: RepoCache, c: RepoSpec, wanted: Wanted[], access: HubAccess, options: ResolveOptions, log: (line: string) => void): Promise<Fetched> {
  // Everything below works on the commit, so a branch that moves mid-download cannot mix two versions.
  const commit = isCommit(c.revision) ? c.revision : await resolveCommit(c, access);
  const dir = cache.snapshotDir(commit);
  const known = cachedState(cache, commit, wanted);
  if (known.complete) {
    cache.writeRef(c.revision, commit);
    log(`model: ${c.repo}@${c.revision} (${commit.slice(0, 12)}) from the cache ${dir}`);
    return { commit, dir, missing: [], downloaded: 0 };
  }

  const listed = await pathsInfo({ repo: c.repo, paths: wanted.map((w) => w.path), revision: commit, ...access });
  const byPath = new Map(listed.filter((e) => e.type === 'file').map((e) => [e.path, e]));
  for (const w of wanted) if (!byPath.has(w.path)) cache.markAbsent(commit, w.path);
  // The ref is written even for a repo that turns out unusable, so the next start knows without asking.
  const { needed, onnx } = neededFiles(wanted, (path) => (byPath.has(path) ? 'present' : 'absent'))!;
  const missing = wanted.filter((w) => w.required && !byPath.has(w.path)).map((w) => w.path);
  if (onnx === null) missing.push(wanted.find((w) => w.onnx)!.path);
  if (missing.length > 0) {
    cache.writeRef(c.revision, commit);
    return { commit, dir, missing, downloaded: 0 };
  }

  const files = needed.flatMap((w) => (byPath.has(w.path) && cache.fileState(commit, w.path) !== 'present' ? [remoteFile(byPath.get(w.path)!)] : []));
  const toFetch = files.filter((f) => !hasBlob(cache.blobPath(f.etag), f.size));
  if (toFetch.length > 0) {
    const mb = (toFetch.reduce((sum, f) => sum + f.size, 0) / 1e6).toFixed(1);
    log(`model: downloading ${c.repo}@${c.revision} (${commit.slice(0, 12)}): ${toFetch.map((f) => f.path).join(', ')} (${mb} MB) into ${cache.dir}`);
  }
  for (const file of files) {
    options.signal?.throwIfAborted();
    const blob = cache.blobPath(file.etag);
    if (toFetch.includes(file)) await downloadBlob(c.repo, commit, file, blob, access, options.onProgress);
    cache.link(commit, file.path, blob);
  }
  // Last: refs/<revision> only ever names a snapshot that is complete.
  cache.writeRef(c.revision, commit);
  log(`model: ${c.repo}@${c.revision} (${commit.slice(0, 12)}) ready in ${dir}`);
  return { commit, dir, missing: [], downloaded: toFetch.length };
}

async function resolveCommit(c: RepoSpec, access: HubAccess): Promise<string> {
  const info = await modelInfo({ name: c.repo, revision: c.revision, additionalFields: ['sha'], ...access });
  if (typeof info.sha !== 'string' || !isCommit(info.sha)) throw new ModelFetchError(`${c.repo}@${c.revision}: the Hub answered without a commit id`);
  return info.sha;
}

const ETAG = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

function remoteFile(entry: PathInfo): RemoteFile {
  const file: RemoteFile = entry.lfs
    ? { path: entry.path, size: entry.lfs.size, etag: entry.lfs.oid, lfs: true }
    : { path: entry.path, size: entry.size, etag: entry.oid ?? '', lfs: false };
  // The etag becomes a file name under blobs/: anything but a hex digest is refused.
  if (!ETAG.test(file.etag)) throw new ModelFetchError(`${entry.path}: the Hub listed no usable hash (${JSON.stringify(file.etag)})`);
  return file;
}

/** A blob from an earlier download (by us or another HF client) is reused; its name is its hash. */
function hasBlob(path: string, size: number): boolean {
  try {
    return statSync(path).size === size;
  } catch {
    return false;
  }
}

function checkedToken(token: string | undefined): string | undefined {
  // @huggingface/hub refuses other tokens with a TypeError; say which setting is wrong instead.
  if (token && !token.startsWith('hf_')) throw new ModelFetchError('HF_TOKEN does not look like a Hugging Face token (they start with "hf_")');
  return token;
}

function offlineError(candidates: RepoSpec[], hub: HubEnv, variant: Variant): ModelFetchError {
  const [first, mirror] = candidates.map((c) => `${c.repo}@${c.revision}`);
  const what = mirror ? `neither ${first} nor its mirror ${mirror} (${ONNX_FILE[variant]}) is` : `${first} (${ONNX_FILE[variant]}) is not`;
  const where = candidates.map((c) => new RepoCache(hub.cacheDir, c.repo).dir).join(', ');
  return new ModelFetchError(
    `HF_HUB_OFFLINE is set and ${what} in the cache (${where}): ` +
      'unset HF_HUB_OFFLINE and give the server network access once to download it, or pass --model <dir> pointing at a local model directory (config.json, tokenizer.json, onnx/model.onnx)',
  );
}

/** Turns the Hub's and fetch's errors into one line that names the model and what to do. */
async function withHubErrors<T>(c: RepoSpec, spec: string | undefined, hub: HubEnv, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isAbort(err) || err instanceof ModelFetchError) throw err;
    const name = `${c.repo}@${c.revision}`;
    const local = spec === undefined ? '' : ` (and there is no local directory ${spec})`;
    if (err instanceof HubApiError) {
      if (err.statusCode === 401 || err.statusCode === 403) {
        const hint = hub.token ? 'the HF_TOKEN given was not accepted' : 'if it is private or gated, set HF_TOKEN';
        throw new ModelFetchError(`${name}: ${hub.endpoint} refused access (HTTP ${err.statusCode}); the repo may not exist, or ${hint}${local}`);
      }
      if (err.statusCode === 404) throw new ModelFetchError(`${name}: not found on ${hub.endpoint} (no such repo or revision)${local}`);
      throw new ModelFetchError(`${name}: ${hub.endpoint} answered HTTP ${err.statusCode}: ${err.message}`);
    }
    const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    // HF_HUB_OFFLINE=1 cannot help here: the cache was looked at first and lacks the files.
    const where = new RepoCache(hub.cacheDir, c.repo).dir;
    throw new ModelFetchError(
      `${name}: cannot reach ${hub.endpoint} (${cause}) and the model is not in the cache (${where}); HF_HUB_OFFLINE is not set: ` +
        'give the server network access (or set HF_ENDPOINT to a reachable mirror), or pass --model <dir> pointing at a local model directory (config.json, tokenizer.json, onnx/model.onnx)',
    );
  }
}
