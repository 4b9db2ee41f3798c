/**
 * Promotion and rollback of a served model directory, each one atomic step that a SIGKILL at any
 * moment cannot tear.
 *
 * A directory that `finetune --promote-to` (or `rollback`) has touched is laid out as
 *
 *     DIR/current -> .versions/<id>     the served model: a symlink, switched by one rename(2)
 *     DIR/.versions/<id>/               whole models, never written to once complete
 *     DIR/.versions/<id>.json           {"previous": "<id>"}: what `rollback` puts back
 *
 * The server resolves DIR through `current` (src/model/model-dir.ts) and watches DIR itself, so
 * it always loads one whole version, and the rename is the one event a switch makes there. A new
 * model is copied into a staging folder inside .versions (invisible to the server) and renamed to
 * its final name before the symlink points at it; the `previous` record of the version about to
 * be served is written before the switch, and only ever read for the version that is current, so
 * whatever the moment of a crash, `current` names a whole model and `rollback` knows what to put
 * back. What a crash leaves behind (staging folders, versions nobody points at, a half-finished
 * migration) is cleaned by the next promotion or rollback, under a lock, and by a server start.
 *
 * A plain model directory (files at the top, as the user made it) is migrated on its first
 * promotion: its files are hard-linked into a version (copied where links are impossible), the
 * symlink made, and only then are the top-level entries removed. That version is never cleaned
 * away: it holds whatever the user had in DIR.
 */
import { closeSync, copyFileSync, existsSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, rmdirSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { log } from '../log.js';
import { CURRENT, VERSIONS, servedModelDir, versionOf } from '../model/model-dir.js';

export { CURRENT, VERSIONS, servedModelDir };

/** Where an old promotion (before the versioned layout) kept the replaced model. */
export const LEGACY_PREVIOUS = '.previous';
const LOCK = '.lock';
const STAGING = '.staging-';

/**
 * Test-only: `RERANK_TEST_CRASH_AT=<step>` makes the process SIGKILL itself at that step, so a
 * test can prove that a crash anywhere leaves one whole model served. Never set it otherwise.
 */
export const CRASH_STEPS = [
  'lock', 'migrate-linked', 'migrate-staged', 'migrate-switched', 'migrate-cleaning',
  'copied', 'staged', 'recorded', 'switch-linked', 'switched', 'collecting',
  'rollback-recorded', 'rollback-switched',
] as const;
type CrashStep = (typeof CRASH_STEPS)[number];
function crashPoint(step: CrashStep): void {
  if (process.env.RERANK_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}

interface VersionRecord {
  previous?: string;
  /** 'migrated': the user's own directory as it was; never removed by a cleanup. */
  origin?: 'migrated' | 'legacy-previous' | 'promoted';
}

/** The model's files, relative to `dir`: hidden entries (.versions, staging) and the pointer are not part of it. */
export function modelFiles(dir: string, sub = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
    if (entry.name.startsWith('.') || (!sub && entry.name === CURRENT)) continue;
    const rel = sub ? join(sub, entry.name) : entry.name;
    if (entry.isDirectory()) out.push(...modelFiles(dir, rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

const isServable = (dir: string): boolean => existsSync(dir) && statSync(dir).isDirectory() && modelFiles(dir).some((f) => f.endsWith('.onnx'));

function fsyncPath(path: string, flags = 'r'): void {
  try {
    const fd = openSync(path, flags);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some platforms cannot fsync a directory; renames are still atomic
  }
}

/** Every directory under `root` (and root itself) synced, so renaming root publishes complete entries. */
function syncTree(root: string): void {
  for (const entry of readdirSync(root, { withFileTypes: true })) if (entry.isDirectory()) syncTree(join(root, entry.name));
  fsyncPath(root);
}

/** A copy whose data is on disk before anything renames it into view. */
function copyDurably(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  fsyncPath(to, 'r+');
}

/** A hard link (no bytes copied, no space used), or a durable copy across devices or where links are refused. */
function linkOrCopy(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  try {
    linkSync(from, to);
  } catch {
    copyDurably(from, to);
  }
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncPath(dirname(path));
}

const versionsDir = (dir: string) => join(dir, VERSIONS);
const recordPath = (dir: string, id: string) => join(versionsDir(dir), `${id}.json`);

function readRecord(dir: string, id: string): VersionRecord {
  try {
    return JSON.parse(readFileSync(recordPath(dir, id), 'utf8')) as VersionRecord;
  } catch {
    return {};
  }
}

const writeRecord = (dir: string, id: string, record: VersionRecord) => writeAtomically(recordPath(dir, id), JSON.stringify(record) + '\n');

let counter = 0;
const newId = (): string => `${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${process.pid}-${++counter}`;

/** The id of the version `current` points at, or undefined for a plain (or empty, or new) directory. */
export function currentVersion(dir: string): string | undefined {
  return versionOf(dir);
}

/** Points `current` at the version: a new symlink renamed over the old one, the only step a reader can see. */
function switchTo(dir: string, id: string): void {
  const tmp = join(dir, `.${CURRENT}.tmp-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(join(VERSIONS, id), tmp);
  crashPoint('switch-linked');
  renameSync(tmp, join(dir, CURRENT));
  fsyncPath(dir);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * One promotion or rollback at a time per directory. Each contender creates a ticket of its own,
 * `.versions/.lock-<pid>-<nonce>` (O_EXCL), then lists the others: it holds the lock only if no
 * live one is there. Two that overlap see each other's ticket (whoever lists first created first),
 * so at most one proceeds; when both see each other both step back and retry after a random pause.
 * A ticket of a dead process (a SIGKILLed promotion) is removed by whoever finds it: its name is
 * never used again, so removing it cannot take away a live lock, which a rewrite or removal of
 * one shared lock file could (two racers that both read the dead pid both took it over).
 * `.lock` is the lock an older version wrote (its pid inside); it counts as held while that pid lives.
 */
function withLock<T>(dir: string, fn: () => T, { tries = 40 } = {}): T {
  const vdir = versionsDir(dir);
  mkdirSync(vdir, { recursive: true });
  const mine = `${LOCK}-${process.pid}-${randomBytes(6).toString('hex')}`;
  for (let attempt = 1; ; attempt++) {
    try {
      closeSync(openSync(join(vdir, mine), 'wx'));
    } catch (err) {
      throw new Error(`cannot create the promotion lock in ${vdir} (${(err as NodeJS.ErrnoException).code}): make ${dir} writable by this user`);
    }
    const rival = liveRival(vdir, mine);
    if (rival === undefined) break;
    rmSync(join(vdir, mine), { force: true });
    if (attempt >= tries) {
      throw new Error(`${dir} is being promoted or rolled back by pid ${rival.pid} (${join(vdir, rival.name)}): wait for it to finish, then run again (remove that file only if pid ${rival.pid} is not rerank-mcp)`);
    }
    Atomics.wait(PAUSE, 0, 0, 5 + Math.random() * 20);
  }
  crashPoint('lock');
  try {
    return fn();
  } finally {
    rmSync(join(vdir, mine), { force: true });
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** A lock ticket other than `mine` whose process lives; those of dead processes are removed on the way. */
function liveRival(vdir: string, mine: string): { name: string; pid: number } | undefined {
  for (const name of readdirSync(vdir)) {
    if (name === mine || (name !== LOCK && !name.startsWith(`${LOCK}-`))) continue;
    const pid = name === LOCK ? Number(safeRead(join(vdir, name))) : Number(name.split('-')[1]);
    // Our own pid on another ticket: a dead earlier process that had it (pid 1 in a container).
    const dead = !Number.isInteger(pid) || pid <= 0 || pid === process.pid || !alive(pid);
    if (!dead) return { name, pid };
    rmSync(join(vdir, name), { force: true });
  }
  return undefined;
}

const safeRead = (path: string): string => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '?';
  }
};

/** The pid in a staging folder's or temp file's name, if its process is gone (or is us: leftovers of a failed step). */
function abandoned(name: string): boolean {
  const pid = Number(/(?:staging-|tmp-)(\d+)/.exec(name)?.[1]);
  return !Number.isInteger(pid) || pid === process.pid || !alive(pid);
}

/**
 * Removes what crashes left: staging folders and temp files of dead processes, versions neither
 * served nor kept for rollback (a migrated user directory is always kept), and the top-level
 * entries of a migration that was interrupted after its switch. Safe at any moment: it never
 * touches what `current` or its `previous` name.
 */
export function cleanStale(dir: string, { versions = true } = {}): void {
  const vdir = versionsDir(dir);
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (name.startsWith(`.${CURRENT}.tmp-`) && abandoned(name)) rmSync(join(dir, name), { force: true });
  }
  if (!existsSync(vdir)) return;
  const current = currentVersion(dir);
  for (const name of readdirSync(vdir)) {
    if ((name.startsWith(STAGING) || name.includes('.tmp-')) && abandoned(name)) rmSync(join(vdir, name), { recursive: true, force: true });
  }
  if (!current) return;
  finishMigration(dir);
  if (!versions) return;
  const keep = new Set([current, readRecord(dir, current).previous].filter((v): v is string => !!v));
  let removed = 0;
  for (const name of readdirSync(vdir)) {
    if (name.startsWith('.') || name.includes('.tmp-')) continue;
    const id = name.replace(/\.json$/, '');
    if (keep.has(id) || readRecord(dir, id).origin === 'migrated' || promotedByLiveProcess(id)) continue;
    rmSync(join(vdir, name), { recursive: true, force: true });
    if (++removed === 1) crashPoint('collecting');
  }
}

/**
 * A version whose id names another live process is one that process is promoting (staged, not yet
 * switched to): the lock makes that impossible while we clean, and this keeps it so if the lock
 * were ever bypassed (a user removing the file by hand). A pid reused later only delays its removal.
 */
function promotedByLiveProcess(id: string): boolean {
  const pid = Number(/^\d{8}T\d{6}Z-(\d+)-\d+$/.exec(id)?.[1]);
  return Number.isInteger(pid) && pid !== process.pid && alive(pid);
}

/**
 * After a migration's switch, the top-level files it linked into the migrated version are removed:
 * only those that are the very same file (same inode) or the same bytes as the migrated copy, so
 * nothing the user added later is touched.
 */
function finishMigration(dir: string): void {
  const vdir = versionsDir(dir);
  const migrated = readdirSync(vdir).filter((n) => !n.startsWith('.') && !n.endsWith('.json') && readRecord(dir, n).origin !== undefined && readRecord(dir, n).origin !== 'promoted');
  const legacy = join(dir, LEGACY_PREVIOUS);
  if (existsSync(legacy) && migrated.some((id) => readRecord(dir, id).origin === 'legacy-previous')) rmSync(legacy, { recursive: true, force: true });
  const origin = migrated.find((id) => readRecord(dir, id).origin === 'migrated');
  if (!origin) return;
  let removed = 0;
  for (const f of modelFiles(dir)) {
    const copy = join(vdir, origin, f);
    if (!existsSync(copy) || !sameFile(join(dir, f), copy)) continue;
    rmSync(join(dir, f), { force: true });
    if (++removed === 1) crashPoint('migrate-cleaning');
  }
  removeEmptyDirs(dir);
  fsyncPath(dir);
}

function sameFile(a: string, b: string): boolean {
  const sa = statSync(a);
  const sb = statSync(b);
  if (sa.ino === sb.ino && sa.dev === sb.dev) return true;
  return sa.size === sb.size && readFileSync(a).equals(readFileSync(b));
}

function removeEmptyDirs(dir: string, sub = ''): void {
  for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
    if (entry.name.startsWith('.') || !entry.isDirectory() || (!sub && entry.name === CURRENT)) continue;
    const rel = join(sub, entry.name);
    removeEmptyDirs(dir, rel);
    if (readdirSync(join(dir, rel)).length === 0) rmdirSync(join(dir, rel));
  }
}

/** Fills a staging folder, syncs it, and gives it its final name: a version is either complete or absent. */
function stageVersion(dir: string, fill: (staging: string) => void, step?: CrashStep): string {
  const id = newId();
  const staging = join(versionsDir(dir), `${STAGING}${process.pid}-${counter}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  fill(staging);
  syncTree(staging);
  if (step) crashPoint(step);
  renameSync(staging, join(versionsDir(dir), id));
  fsyncPath(versionsDir(dir));
  return id;
}

/**
 * A plain directory becomes the versioned layout serving the same files: linked into a version
 * (with an old DIR/.previous as the version before it), switched to, then the top level emptied.
 */
function migrate(dir: string): void {
  let legacyId: string | undefined;
  const legacy = join(dir, LEGACY_PREVIOUS);
  if (isServable(legacy)) {
    legacyId = stageVersion(dir, (s) => modelFiles(legacy).forEach((f) => linkOrCopy(join(legacy, f), join(s, f))));
    writeRecord(dir, legacyId, { origin: 'legacy-previous' });
  }
  const files = modelFiles(dir);
  if (files.length === 0) return;
  const id = stageVersion(dir, (s) => {
    for (const f of files) linkOrCopy(join(dir, f), join(s, f));
    crashPoint('migrate-linked');
  }, 'migrate-staged');
  writeRecord(dir, id, { origin: 'migrated', ...(legacyId ? { previous: legacyId } : {}) });
  switchTo(dir, id);
  crashPoint('migrate-switched');
  finishMigration(dir);
  log(`${dir}: moved its files into ${join(dir, VERSIONS, id)} (kept until you remove it) and serving it through ${join(dir, CURRENT)}`);
}

/** Checks and prepares `dir` for a switch: the versioned layout, with nothing stale left. */
function prepare(dir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory: name the model directory the server serves`);
  mkdirSync(dir, { recursive: true });
  const link = join(dir, CURRENT);
  let linkStat;
  try {
    linkStat = lstatSync(link);
  } catch {
    // no pointer yet
  }
  if (linkStat && (!linkStat.isSymbolicLink() || !readlinkSync(link).startsWith(VERSIONS + '/'))) {
    throw new Error(`${link} exists and is not the pointer a promotion writes (a symlink into ${VERSIONS}/): move it away, then promote again`);
  }
  cleanStale(dir, { versions: false });
  if (!currentVersion(dir)) migrate(dir);
}

/**
 * Installs the model in `source` into `target` (created if missing) as a new version and switches
 * to it; the version served before becomes the one `rollback` puts back. Returns the new version's
 * directory. `expected`: the version the caller evaluated against; the promotion is refused if
 * another one has been switched in meanwhile.
 */
export function promoteModel(source: string, target: string, options: { expectServing?: string } = {}): string {
  const incoming = modelFiles(source);
  if (!incoming.some((f) => f.endsWith('.onnx'))) throw new Error(`${source} holds no ONNX file: not a servable model`);
  return withLock(target, () => {
    if (options.expectServing !== undefined && options.expectServing !== servedModelDir(target)) {
      throw new ServedModelChanged(`${target} switched to ${servedModelDir(target)} while the candidate was compared with ${options.expectServing}: run finetune again to compare it with the model served now`);
    }
    prepare(target);
    const previous = currentVersion(target);
    const id = stageVersion(target, (s) => {
      for (const f of incoming) copyDurably(join(source, f), join(s, f));
      crashPoint('copied');
    }, 'staged');
    writeRecord(target, id, { origin: 'promoted', ...(previous ? { previous } : {}) });
    crashPoint('recorded');
    switchTo(target, id);
    crashPoint('switched');
    cleanStale(target);
    return join(target, VERSIONS, id);
  });
}

/** What `rollback` would put back: the version served before the current one, if it is still there. */
export function previousVersion(dir: string): string | undefined {
  const current = currentVersion(dir);
  if (current) {
    const previous = readRecord(dir, current).previous;
    return previous && isServable(join(versionsDir(dir), previous)) ? previous : undefined;
  }
  return isServable(join(dir, LEGACY_PREVIOUS)) ? LEGACY_PREVIOUS : undefined;
}

/**
 * Switches `dir` back to the version served before the current one; the version rolled back from
 * becomes the one a second rollback returns to. Returns the directory now served.
 */
export function rollbackModel(dir: string): string {
  const nothing = () => new NothingToRollBack(`no previous model in ${dir}: rollback puts back what finetune --promote-to ${dir} replaced, and nothing was replaced there yet`);
  // A directory no promotion touched is left exactly as it is.
  if (!currentVersion(dir) && !isServable(join(dir, LEGACY_PREVIOUS))) throw nothing();
  return withLock(dir, () => {
    prepare(dir);
    const current = currentVersion(dir);
    const previous = previousVersion(dir);
    if (!current || !previous) throw nothing();
    // Recorded first: it is read only once `previous` is current, so a crash before the switch changes nothing.
    writeRecord(dir, previous, { ...readRecord(dir, previous), previous: current });
    crashPoint('rollback-recorded');
    switchTo(dir, previous);
    crashPoint('rollback-switched');
    cleanStale(dir);
    return join(dir, VERSIONS, previous);
  });
}

export class NothingToRollBack extends Error {}
export class ServedModelChanged extends Error {}

/** At server start: what a crashed promotion left is removed, if no promotion is running now. */
export function tidyServedDir(dir: string): void {
  if (!currentVersion(dir) && !existsSync(versionsDir(dir))) return;
  try {
    // No waiting at start: if a promotion holds the lock, it cleans up itself.
    withLock(dir, () => cleanStale(dir), { tries: 2 });
  } catch {
    // a promotion is running (it cleans up itself), or the directory is read-only to this user
  }
}
