/**
 * Runs in a worker thread (probe.ts): opening SQLite and reading from it are synchronous and
 * can wait on a lock or a slow disk, which must never hold the server's event loop.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

function probe(file: string): string | undefined {
  let stat;
  try {
    stat = statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `feedback database ${file}: ${(err as Error).message}`;
    // Not created yet: the first write creates it (and its folders) in the nearest existing folder.
    let dir = path.dirname(file);
    while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    try {
      accessSync(dir, constants.W_OK);
      return undefined;
    } catch {
      return `feedback database ${file} does not exist and ${dir} is not writable: fix the permissions or choose another --db`;
    }
  }
  if (!stat.isFile()) return `feedback database ${file} is not a regular file: choose another --db`;
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 1000 });
    try {
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } finally {
      db.close();
    }
    return undefined;
  } catch (err) {
    return `feedback database ${file}: ${(err as Error).message}`;
  }
}

parentPort!.postMessage(probe((workerData as { file: string }).file) ?? null);
