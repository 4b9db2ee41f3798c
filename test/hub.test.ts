/**
 * Models by name: resolveModel against a fake Hub on 127.0.0.1 (never the real one), with a
 * fresh HF cache per test. Covers the cache layout, no-request second runs, offline mode,
 * cut, killed and corrupt downloads, tokens, revisions and the default model's ONNX mirror.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrossEncoder } from '../src/model/cross-encoder.js';
import { DEFAULT_MODEL, DEFAULT_MODEL_MIRROR, resolveModel, type ResolveOptions } from '../src/hub/resolve-model.js';
import { hubCacheDir } from '../src/hub/hub-env.js';
import { parseRepoSpec } from '../src/hub/repo-spec.js';
import { progressPrinter } from '../src/hub/progress.js';
import { fakeCommit, gitBlobSha1, readDirFiles, sha256, singleCommitRepo, startFakeHub, type FakeHub, type FakeRepo, type Files } from './helpers/fake-hub.js';
import { REPO_ROOT, TINY_CE } from './helpers/fixtures.js';

const TINY = readDirFiles(TINY_CE);
const ONNX = 'onnx/model.onnx';
const ONNX_SHA = sha256(TINY[ONNX]);
const REPO = 'acme/tiny-ce';
const REPO_DIR = 'models--acme--tiny-ce';

let hubs: FakeHub[] = [];
afterEach(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  hubs = [];
});

async function setup(repos: FakeRepo[] = [singleCommitRepo(REPO, TINY)], token?: string) {
  const hub = await startFakeHub(repos, { token });
  hubs.push(hub);
  const cache = mkdtempSync(join(tmpdir(), 'rerank-hub-'));
  const env: NodeJS.ProcessEnv = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url };
  const logs: string[] = [];
  const resolve = (spec: string | undefined, extra: Partial<ResolveOptions> = {}) => resolveModel(spec, { variant: 'fp32', env, log: (l) => logs.push(l), ...extra });
  return { hub, cache, env, logs, resolve };
}

/** Every file under dir, relative, for asserting what a failure left behind. */
function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

const without = (files: Files, ...paths: string[]): Files => Object.fromEntries(Object.entries(files).filter(([p]) => !paths.includes(p)));

async function scoreOne(dir: string): Promise<number> {
  const model = await CrossEncoder.load({ model: dir, variant: 'fp32' });
  try {
    const { logits, labels } = await model.session.run([model.encode('how do magnets work', 'Magnets attract iron.')]);
    return model.scoreRow(logits.subarray(0, labels)).score;
  } finally {
    await model.release();
  }
}

test('first run downloads only the needed files into the HF cache layout; the second makes no request', async () => {
  const { hub, cache, resolve } = await setup();
  const progress: { file: string; loaded: number; total: number }[] = [];
  const first = await resolve(REPO, { onProgress: (p) => progress.push(p) });
  const commit = fakeCommit(`${REPO}#1`);
  assert.deepEqual(first, { dir: join(cache, REPO_DIR, 'snapshots', commit), repo: REPO, revision: 'main', commit, fromCache: false });

  const fetched = hub.downloads().map((r) => r.path.split('/').slice(-2).join('/'));
  assert.deepEqual(fetched.map((p) => p.replace(/^[0-9a-f]+\//, '')).sort(), ['config.json', 'onnx/model.onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  assert.ok(!hub.requests.some((r) => r.path.includes('vocab.txt')), 'vocab.txt is never asked for');

  const repoDir = join(cache, REPO_DIR);
  assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), commit);
  // LFS blobs are named by sha256, others by git blob sha1; snapshot entries are relative links to them
  assert.ok(existsSync(join(repoDir, 'blobs', ONNX_SHA)));
  assert.ok(existsSync(join(repoDir, 'blobs', gitBlobSha1(TINY['config.json']))));
  assert.ok(lstatSync(join(first.dir, ONNX)).isSymbolicLink());
  assert.equal(readlinkSync(join(first.dir, ONNX)), join('..', '..', '..', 'blobs', ONNX_SHA));
  assert.ok(!listTree(repoDir).some((p) => p.endsWith('.incomplete') || p.endsWith('.tmp')), 'no temp files left');

  const onnxProgress = progress.filter((p) => p.file === ONNX);
  assert.equal(onnxProgress.at(-1)!.loaded, TINY[ONNX].length);
  assert.ok(onnxProgress.every((p) => p.total === TINY[ONNX].length));

  const before = hub.requests.length;
  const second = await resolve(REPO);
  assert.equal(hub.requests.length, before, 'the second run makes no request');
  assert.deepEqual(second, { ...first, fromCache: true });
});

test('the resolved snapshot loads and scores like the local directory', async () => {
  const { resolve } = await setup();
  const { dir } = await resolve(REPO);
  assert.equal(await scoreOne(dir), await scoreOne(TINY_CE));
});

test('a download cut half way is never used and is redone on the next run', async () => {
  const { hub, cache, resolve } = await setup();
  hub.faults.cutAfter.set(ONNX, 1_000_000);
  await assert.rejects(resolve(REPO), new RegExp(`onnx/model\\.onnx from acme/tiny-ce@[0-9a-f]{12}: download cut off after \\d+ of ${TINY[ONNX].length} bytes \\(terminated\\); nothing was kept, run again to retry`));
  const repoDir = join(cache, REPO_DIR);
  const left = listTree(repoDir);
  assert.ok(!left.includes(join('blobs', ONNX_SHA)), 'no blob under the final name');
  assert.ok(!left.some((p) => p.endsWith('model.onnx')), 'no snapshot entry for it');
  assert.ok(!left.some((p) => p.includes('.incomplete')), 'the temp file is removed');
  assert.ok(!existsSync(join(repoDir, 'refs', 'main')), 'no ref to a half snapshot');

  hub.faults.cutAfter.clear();
  const again = await resolve(REPO);
  assert.equal(hub.downloads(ONNX).length, 2);
  assert.equal(sha256(readFileSync(join(again.dir, ONNX))), ONNX_SHA);
  // the small files finished the first time and are not fetched again
  assert.equal(hub.downloads('config.json').length, 1);
});

test('a process killed mid-download leaves nothing that looks complete', async () => {
  const { hub, cache, env, resolve } = await setup();
  hub.faults.stallAfter.set(ONNX, 2_000_000);
  const script = `import { resolveModel } from './src/hub/resolve-model.ts'; await resolveModel('${REPO}', { variant: 'fp32' });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: 'ignore' });
  const blobs = join(cache, REPO_DIR, 'blobs');
  const partial = () => (existsSync(blobs) ? readdirSync(blobs).filter((n) => n.startsWith(ONNX_SHA) && n.endsWith('.incomplete')) : []);
  for (let i = 0; i < 600 && partial().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(partial().length, 1, 'the child started writing the model');
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;

  const left = listTree(join(cache, REPO_DIR));
  assert.ok(!left.includes(join('blobs', ONNX_SHA)));
  assert.ok(!left.some((p) => p.endsWith(join('snapshots', fakeCommit(`${REPO}#1`), ONNX))));
  assert.ok(!existsSync(join(cache, REPO_DIR, 'refs', 'main')));

  hub.faults.stallAfter.clear();
  const { dir } = await resolve(REPO);
  // the killed run's temp file is ignored: the snapshot links to a blob downloaded whole
  assert.equal(readlinkSync(join(dir, ONNX)), join('..', '..', '..', 'blobs', ONNX_SHA));
  assert.equal(sha256(readFileSync(join(dir, ONNX))), ONNX_SHA);
});

test('a wrong hash or size is refused and the bad file removed', async () => {
  const { hub, cache, resolve } = await setup();
  const repoDir = join(cache, REPO_DIR);
  hub.faults.corrupt.add(ONNX);
  await assert.rejects(resolve(REPO), new RegExp(`onnx/model\\.onnx from acme/tiny-ce@.*: sha256 [0-9a-f]{64} does not match the Hub's ${ONNX_SHA}; the download was discarded`));
  assert.ok(!listTree(repoDir).some((p) => p.includes(ONNX_SHA) || p.endsWith('model.onnx')));

  hub.faults.corrupt.clear();
  hub.faults.corrupt.add('tokenizer.json');
  await rmCache(repoDir);
  await assert.rejects(resolve(REPO), /tokenizer\.json from .*: git blob sha1 [0-9a-f]{40} does not match/);

  hub.faults.corrupt.clear();
  hub.faults.truncate.add('config.json');
  await rmCache(repoDir);
  await assert.rejects(resolve(REPO), /config\.json from .*: got 907 bytes but the Hub lists 917; the download was discarded/);
  assert.ok(!listTree(repoDir).some((p) => p.includes(gitBlobSha1(TINY['config.json'])) || p.endsWith('config.json') || p.includes('.incomplete')));

  hub.faults.truncate.clear();
  await resolve(REPO);
});

async function rmCache(dir: string): Promise<void> {
  const { rm } = await import('node:fs/promises');
  await rm(dir, { recursive: true, force: true });
}

test('HF_HUB_OFFLINE=1 works from the cache with no request, and fails clearly without it', async () => {
  const { hub, cache, env, resolve } = await setup();
  const offline = { env: { ...env, HF_HUB_OFFLINE: '1' } };
  const err = await resolve(REPO, offline).then(() => assert.fail('resolved offline with an empty cache'), (e: Error) => e);
  assert.equal(hub.requests.length, 0);
  assert.ok(!err.message.includes('\n'), 'one line');
  assert.match(err.message, /HF_HUB_OFFLINE is set and acme\/tiny-ce@main/);
  assert.ok(err.message.includes(join(cache, REPO_DIR)), err.message);
  assert.match(err.message, /--model <dir>/);

  const online = await resolve(REPO);
  const before = hub.requests.length;
  assert.deepEqual(await resolve(REPO, offline), { ...online, fromCache: true });
  assert.deepEqual((await resolve(`${REPO}@${online.commit}`, offline)).dir, online.dir);
  assert.equal(hub.requests.length, before);
  // the cache is per variant: no int8 file was fetched, so offline int8 fails
  await assert.rejects(resolve(REPO, { ...offline, variant: 'int8' }), /onnx\/model_quantized\.onnx\) is not in the cache/);
});

test('HF_TOKEN is sent on every request when set; without it a private repo is refused clearly', async () => {
  const { hub, env, resolve } = await setup(undefined, 'hf_secret');
  await assert.rejects(resolve(REPO), /acme\/tiny-ce@main: http:\/\/127\.0\.0\.1:\d+ refused access \(HTTP 401\).*set HF_TOKEN/);
  await assert.rejects(resolve(REPO, { env: { ...env, HF_TOKEN: 'hf_wrong' } }), /the HF_TOKEN given was not accepted/);
  await assert.rejects(resolve(REPO, { env: { ...env, HF_TOKEN: 'not-a-token' } }), /HF_TOKEN does not look like a Hugging Face token/);
  hub.requests.length = 0;
  await resolve(REPO, { env: { ...env, HF_TOKEN: 'hf_secret' } });
  assert.ok(hub.requests.length >= 7);
  assert.ok(hub.requests.every((r) => r.authorization === 'Bearer hf_secret'), 'every request, the CDN redirect included');
});

test('the default model falls back to its ONNX mirror when it has no ONNX file, and says so', async () => {
  const { hub, logs, resolve } = await setup([
    singleCommitRepo(DEFAULT_MODEL, without(TINY, ONNX)),
    singleCommitRepo(DEFAULT_MODEL_MIRROR, TINY),
  ]);
  const resolved = await resolve(undefined);
  assert.equal(resolved.repo, DEFAULT_MODEL_MIRROR);
  assert.ok(logs.some((l) => l.includes(`${DEFAULT_MODEL}@main has no onnx/model.onnx; using its ONNX mirror ${DEFAULT_MODEL_MIRROR}`)), logs.join('\n'));
  assert.ok(!hub.downloads().some((r) => r.path.startsWith(`/${DEFAULT_MODEL}/`)), 'nothing downloaded from the repo without ONNX');
  assert.ok(await scoreOne(resolved.dir) > 0);

  // the next start knows both answers from the cache
  const before = hub.requests.length;
  logs.length = 0;
  assert.deepEqual(await resolve(undefined), { ...resolved, fromCache: true });
  assert.equal(hub.requests.length, before);
  assert.ok(logs.some((l) => l.includes('using its ONNX mirror')));
});

test('offline, the default model is taken from whichever of the two repos is cached', async () => {
  const { hub, env, resolve } = await setup([singleCommitRepo(DEFAULT_MODEL_MIRROR, TINY)]);
  const offline = { env: { ...env, HF_HUB_OFFLINE: '1' } };
  await assert.rejects(resolve(undefined, offline), new RegExp(`HF_HUB_OFFLINE is set and neither ${DEFAULT_MODEL}@main nor its mirror ${DEFAULT_MODEL_MIRROR}@main \\(onnx/model\\.onnx\\) is in the cache`));
  await resolve(DEFAULT_MODEL_MIRROR);
  const before = hub.requests.length;
  assert.equal((await resolve(undefined, offline)).repo, DEFAULT_MODEL_MIRROR);
  assert.equal(hub.requests.length, before);
});

test('the default model is used when it has the ONNX file for the variant', async () => {
  const { hub, resolve } = await setup([
    singleCommitRepo(DEFAULT_MODEL, TINY),
    singleCommitRepo(DEFAULT_MODEL_MIRROR, { ...TINY, 'onnx/model_quantized.onnx': TINY[ONNX] }),
  ]);
  assert.equal((await resolve(undefined)).repo, DEFAULT_MODEL);
  assert.ok(!hub.requests.some((r) => r.path.includes('Xenova')));
  // int8: only the mirror has model_quantized.onnx
  const int8 = await resolve(undefined, { variant: 'int8' });
  assert.equal(int8.repo, DEFAULT_MODEL_MIRROR);
  assert.ok(existsSync(join(int8.dir, 'onnx', 'model_quantized.onnx')));
  assert.ok(!existsSync(join(int8.dir, ONNX)), 'only the chosen variant is fetched');
});

test('@revision: branches, tags and commits get their own snapshot and share blobs', async () => {
  const main = fakeCommit('main');
  const old = fakeCommit('v1');
  const oldConfig = Buffer.from(TINY['config.json'].toString().replace('{', '{\n  "revision_marker": 1,'));
  const { hub, cache, resolve } = await setup([{ id: REPO, commits: { [main]: TINY, [old]: { ...TINY, 'config.json': oldConfig } }, refs: { main, v1: old } }]);

  const tagged = await resolve(`${REPO}@v1`);
  assert.equal(tagged.commit, old);
  assert.equal(tagged.revision, 'v1');
  assert.equal(readFileSync(join(cache, REPO_DIR, 'refs', 'v1'), 'utf8'), old);
  assert.match(readFileSync(join(tagged.dir, 'config.json'), 'utf8'), /revision_marker/);

  hub.requests.length = 0;
  const pinned = await resolve(`${REPO}@${main}`);
  assert.equal(pinned.dir, join(cache, REPO_DIR, 'snapshots', main));
  assert.ok(!existsSync(join(cache, REPO_DIR, 'refs', main)), 'a commit needs no ref');
  assert.ok(!hub.requests.some((r) => r.path.includes('/revision/')), 'a commit is not resolved through the API');
  assert.equal(hub.downloads(ONNX).length, 0, 'the unchanged model blob is shared');

  const before = hub.requests.length;
  await resolve(`${REPO}@${main}`);
  await resolve(`${REPO}@v1`);
  assert.equal(hub.requests.length, before);

  await assert.rejects(resolve(`${REPO}@nope`), /acme\/tiny-ce@nope: not found on http:\/\/127\.0\.0\.1:\d+ \(no such repo or revision\)/);
});

test('a local directory is used as it is; a bad spec or an unknown repo fails clearly', async () => {
  const { hub, resolve } = await setup();
  assert.deepEqual(await resolve(TINY_CE), { dir: TINY_CE, fromCache: true });
  await assert.rejects(resolve('./no/such/dir'), /--model \.\/no\/such\/dir: no such directory, and not a Hugging Face repo id/);
  await assert.rejects(resolve('acme/tiny-ce@'), /not a Hugging Face repo id/);
  await assert.rejects(resolve(join(TINY_CE, 'config.json')), /is a file; it takes a model directory/);
  assert.equal(hub.requests.length, 0);
  await assert.rejects(resolve('acme/missing'), /acme\/missing@main: not found on .* \(and there is no local directory acme\/missing\)/);
  await assert.rejects(resolve('acme/json-only'), /not found/);
});

test('optional files the repo lacks are recorded in .no_exist, so the next run still makes no request', async () => {
  const { hub, cache, resolve } = await setup([singleCommitRepo(REPO, without(TINY, 'tokenizer_config.json', 'special_tokens_map.json'))]);
  const { dir, commit } = await resolve(REPO);
  assert.ok(existsSync(join(cache, REPO_DIR, '.no_exist', commit!, 'special_tokens_map.json')));
  assert.ok(!existsSync(join(dir, 'tokenizer_config.json')));
  const before = hub.requests.length;
  await resolve(REPO);
  assert.equal(hub.requests.length, before);
  assert.ok(await scoreOne(dir) > 0);
});

test('an unreachable endpoint is one line that suggests the way out', async () => {
  const { hub, resolve } = await setup();
  await hub.close();
  await assert.rejects(resolve(REPO), /acme\/tiny-ce@main: cannot reach http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\) and the model is not in the cache \(.*models--acme--tiny-ce\); HF_HUB_OFFLINE is not set: .*pass --model <dir>/);
});

test('a repo without the ONNX file for the variant names what is missing', async () => {
  const { resolve } = await setup([singleCommitRepo(REPO, without(TINY, ONNX))]);
  await assert.rejects(resolve(REPO), /acme\/tiny-ce@main has no onnx\/model\.onnx; pick a repo with ONNX weights for --variant fp32/);
});

test('an aborted resolve stops the download and leaves no temp file', async () => {
  const { hub, cache, resolve } = await setup();
  hub.faults.stallAfter.set(ONNX, 1_000_000);
  const controller = new AbortController();
  const pending = resolve(REPO, { signal: controller.signal, onProgress: (p) => p.file === ONNX && p.loaded > 0 && controller.abort() });
  await assert.rejects(pending, { name: 'AbortError' });
  assert.ok(!listTree(join(cache, REPO_DIR)).some((p) => p.includes('.incomplete') || p.includes(ONNX_SHA)));
});

test('cache location and repo ids follow the Hub conventions', () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c' }, '/home/u'), '/c');
  assert.equal(hubCacheDir({ HF_HOME: '/h' }, '/home/u'), '/h/hub');
  assert.equal(hubCacheDir({}, '/home/u'), '/home/u/.cache/huggingface/hub');
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '', HF_HOME: '/h' }, '/home/u'), '/h/hub');
  assert.deepEqual(parseRepoSpec('cross-encoder/ms-marco-MiniLM-L6-v2'), { repo: 'cross-encoder/ms-marco-MiniLM-L6-v2', revision: 'main' });
  assert.deepEqual(parseRepoSpec('a/b@refs/pr/1'), { repo: 'a/b', revision: 'refs/pr/1' });
  for (const bad of ['name-only', 'a/b/c', 'a--x/b', 'a/b@', 'a/b@../x', '-a/b', 'a/b c']) assert.equal(parseRepoSpec(bad), null, bad);
});

test('progress: a bar on a terminal, a few plain lines otherwise', () => {
  let clock = 0;
  const plain: string[] = [];
  const onPlain = progressPrinter({ isTTY: false, write: (s) => plain.push(s) }, () => clock);
  for (let loaded = 0; loaded <= 1000; loaded += 10) onPlain({ file: 'onnx/model.onnx', loaded, total: 1000 });
  assert.ok(plain.length >= 10 && plain.length <= 11, plain.join(''));
  assert.equal(plain.at(-1), '[rerank-mcp] downloading onnx/model.onnx: 100% (1.0 kB / 1.0 kB)\n');
  assert.ok(plain.every((l) => l.endsWith('\n') && !l.includes('\r')));

  const tty: string[] = [];
  const onTty = progressPrinter({ isTTY: true, write: (s) => tty.push(s) }, () => (clock += 50));
  for (let loaded = 0; loaded <= 1000; loaded += 10) onTty({ file: 'onnx/model.onnx', loaded, total: 1000 });
  assert.ok(tty.length < 60, `${tty.length} redraws`);
  assert.ok(tty.every((l) => l.startsWith('\r')));
  assert.match(tty.at(-1)!, /\[#{24}\] 100% 1\.0 kB \/ 1\.0 kB\x1b\[K\n$/);
});

test('a download is stopped as soon as it goes past the size the Hub lists', async (t) => {
  const { hub, cache, resolve } = await setup();
  const extra = 64 * 1024 * 1024;
  hub.faults.oversize.set('config.json', extra);
  await assert.rejects(resolve(REPO), /config\.json from acme\/tiny-ce@.*: the Hub lists 917 bytes but the download went past \d+; it was stopped and discarded/);
  const sent = hub.oversizeSent.get('config.json') ?? 0;
  t.diagnostic(`the fake Hub sent ${sent} of ${917 + extra} bytes before the client stopped reading`);
  // Socket buffers hold a few MiB at most; reading the whole body would have taken 64 MiB.
  assert.ok(sent < 16 * 1024 * 1024, `the server got to send ${sent} bytes`);
  assert.ok(!listTree(join(cache, REPO_DIR)).some((p) => p.endsWith('config.json') || p.includes('.incomplete')));
  hub.faults.oversize.clear();
  await resolve(REPO);
});

test('external data: onnx/model.onnx_data comes with its graph, loads, and is in the model fingerprint', async () => {
  const qwen = readDirFiles(join(REPO_ROOT, 'test', 'fixtures', 'qwen3-tiny'));
  assert.ok(qwen['onnx/model.onnx_data'], 'the fixture keeps its weights as external data');
  const { hub, resolve } = await setup([singleCommitRepo('acme/qwen3-tiny', qwen)]);
  const { dir } = await resolve('acme/qwen3-tiny');
  const fetched = hub.downloads().map((r) => r.path.split('/').slice(-2).join('/'));
  assert.ok(fetched.includes('onnx/model.onnx_data'), `downloaded: ${fetched.join(', ')}`);
  assert.ok(!fetched.some((p) => p.endsWith('model.safetensors')), 'no PyTorch weights');
  const before = hub.requests.length;
  await resolve('acme/qwen3-tiny');
  assert.equal(hub.requests.length, before, 'the second run makes no request');
  const model = await CrossEncoder.load({ model: dir, variant: 'fp32', maxLength: 128, promptTemplate: 'none' });
  try {
    assert.deepEqual(model.files.externalDataPaths, [join(dir, 'onnx', 'model.onnx_data')]);
  } finally {
    await model.release();
  }
  // Same graph, other weights in the external data: another fingerprint, so no cached score is reused.
  const copy = mkdtempSync(join(tmpdir(), 'rerank-extdata-'));
  cpSync(join(REPO_ROOT, 'test', 'fixtures', 'qwen3-tiny'), copy, { recursive: true });
  const idOf = async () => {
    const m = await CrossEncoder.load({ model: copy, variant: 'fp32', maxLength: 128, promptTemplate: 'none' });
    await m.release();
    return m.id.replace(/@[^/]*\//, '@/');
  };
  const first = await idOf();
  const dataPath = join(copy, 'onnx', 'model.onnx_data');
  const data = readFileSync(dataPath);
  data[data.length - 1] ^= 1;
  writeFileSync(dataPath, data);
  utimesSync(dataPath, statSync(join(copy, 'onnx', 'model.onnx')).atime, statSync(join(copy, 'onnx', 'model.onnx')).mtime);
  assert.notEqual(await idOf(), first);
});

test('--variant int8 takes onnx/model_int8.onnx when the repo has no model_quantized.onnx', async () => {
  // The tiny graph under the int8 name: which file is picked is what is tested, not quantization.
  const files: Files = { ...without(TINY, ONNX), 'onnx/model_int8.onnx': TINY[ONNX] };
  const { hub, resolve } = await setup([singleCommitRepo(REPO, files)]);
  const { dir } = await resolve(REPO, { variant: 'int8' });
  const fetched = hub.downloads().map((r) => r.path.split('/').slice(-2).join('/'));
  assert.ok(fetched.includes('onnx/model_int8.onnx'), `downloaded: ${fetched.join(', ')}`);
  const model = await CrossEncoder.load({ model: dir, variant: 'int8' });
  try {
    assert.equal(model.files.onnxPath, join(dir, 'onnx', 'model_int8.onnx'));
  } finally {
    await model.release();
  }
  const before = hub.requests.length;
  await resolve(REPO, { variant: 'int8' });
  assert.equal(hub.requests.length, before, 'the second run makes no request');
});
