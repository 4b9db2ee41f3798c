/**
 * The Hugging Face cache layout, so that models fetched here are shared with Python and JS
 * clients: models--owner--name/{blobs/<etag>, snapshots/<commit>/<path>, refs/<revision>,
 * .no_exist/<commit>/<path>}. Every write is a temp file renamed into place: a crash leaves
 * at worst a stray temp file, never a name that looks complete.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { isCommit } from './repo-spec.js';

export type FileState = 'present' | 'absent' | 'unknown';

/** A name no other writer uses and no reader mistakes for a finished file. */
export const tempName = (path: string, suffix = 'tmp'): string => `${path}.${process.pid}-${randomBytes(4).toString('hex')}.${suffix}`;

export class RepoCache {
  readonly dir: string;

  constructor(readonly cacheDir: string, readonly repo: string) {
    this.dir = join(cacheDir, `models--${repo.split('/').join('--')}`);
  }

  blobPath(etag: string): string {
    return join(this.dir, 'blobs', etag);
  }

  snapshotDir(commit: string): string {
    return join(this.dir, 'snapshots', commit);
  }

  /** The commit a branch or tag pointed to when last fetched; a commit names itself. */
  readRef(revision: string): string | undefined {
    if (isCommit(revision)) return revision;
    try {
      const commit = readFileSync(join(this.dir, 'refs', revision), 'utf8').trim();
      return isCommit(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  writeRef(revision: string, commit: string): void {
    if (revision !== commit) writeAtomic(join(this.dir, 'refs', revision), commit);
  }

  /** present: in the snapshot; absent: the Hub said the commit has no such file; unknown: never asked. */
  fileState(commit: string, path: string): FileState {
    try {
      if (statSync(join(this.snapshotDir(commit), path)).isFile()) return 'present';
    } catch {
      // a missing file or a link whose blob is gone: fall through
    }
    return existsSync(join(this.dir, '.no_exist', commit, path)) ? 'absent' : 'unknown';
  }

  markAbsent(commit: string, path: string): void {
    writeAtomic(join(this.dir, '.no_exist', commit, path), '');
  }

  /** Points snapshots/<commit>/<path> at a verified blob: a relative symlink, or a copy where links are refused. */
  link(commit: string, path: string, blob: string): void {
    const target = join(this.snapshotDir(commit), path);
    mkdirSync(dirname(target), { recursive: true });
    const temp = tempName(target);
    try {
      try {
        symlinkSync(relative(dirname(target), blob), temp);
      } catch {
        copyFileSync(blob, temp);
      }
      renameSync(temp, target);
    } finally {
      rmSync(temp, { force: true });
    }
  }
}

function writeAtomic(path: string, data: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = tempName(path);
  try {
    writeFileSync(temp, data);
    renameSync(temp, path);
  } finally {
    rmSync(temp, { force: true });
  }
}
