/**
 * One file from the Hub into blobs/<etag>, verified. @huggingface/hub's downloadFileToCacheDir
 * neither checks what it wrote nor reports progress (and logs to stdout, which is the MCP
 * channel), so only its HTTP pieces are used: the bytes are hashed as they stream into a temp
 * file beside the blob, and renamed to the blob's name only once size and hash match.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { downloadFile } from '@huggingface/hub';
import { tempName } from './cache-layout.js';
import { ModelFetchError } from './errors.js';

/** A file as the Hub lists it: LFS files are named by the sha256 of their content, others by their git blob sha1. */
export interface RemoteFile {
  path: string;
  size: number;
  etag: string;
  lfs: boolean;
}

export interface HubAccess {
  hubUrl: string;
  accessToken?: string;
  fetch: typeof fetch;
}

export type ProgressEvent = { file: string; loaded: number; total: number };

export async function downloadBlob(repo: string, commit: string, file: RemoteFile, dest: string, hub: HubAccess, onProgress?: (p: ProgressEvent) => void): Promise<void> {
  const where = `${file.path} from ${repo}@${commit.slice(0, 12)}`;
  // xet: false keeps to plain HTTP GETs (the Hub redirects them to its CDN), the one path tested here.
  const blob = await downloadFile({ repo, path: file.path, revision: commit, ...hub, xet: false });
  if (!blob) throw new ModelFetchError(`${where}: the Hub listed the file but will not serve it`);

  const hash = createHash(file.lfs ? 'sha256' : 'sha1');
  // A git blob id hashes a "blob <size>\0" header before the content.
  if (!file.lfs) hash.update(`blob ${file.size}\0`);
  let loaded = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      loaded += chunk.length;
      // Stopped at once: a server that sends more than the Hub lists could otherwise fill the disk.
      if (loaded > file.size) {
        done(new ModelFetchError(`${where}: the Hub lists ${file.size} bytes but the download went past ${loaded}; it was stopped and discarded`));
        return;
      }
      hash.update(chunk);
      onProgress?.({ file: file.path, loaded, total: file.size });
      done(null, chunk);
    },
  });

  mkdirSync(dirname(dest), { recursive: true });
  const temp = tempName(dest, 'incomplete');
  try {
    onProgress?.({ file: file.path, loaded: 0, total: file.size });
    try {
      await pipeline(Readable.fromWeb(blob.stream() as WebReadableStream<Uint8Array>), meter, createWriteStream(temp, { flags: 'wx' }));
    } catch (err) {
      if (isAbort(err) || err instanceof ModelFetchError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new ModelFetchError(`${where}: download cut off after ${loaded} of ${file.size} bytes (${reason}); nothing was kept, run again to retry`);
    }
    if (loaded !== file.size) {
      throw new ModelFetchError(`${where}: got ${loaded} bytes but the Hub lists ${file.size}; the download was discarded`);
    }
    const actual = hash.digest('hex');
    if (actual !== file.etag) {
      const kind = file.lfs ? 'sha256' : 'git blob sha1';
      throw new ModelFetchError(`${where}: ${kind} ${actual} does not match the Hub's ${file.etag}; the download was discarded`);
    }
    // Flushed before the rename, so a crash cannot leave a complete-looking name over missing data.
    const handle = await open(temp, 'r+');
    await handle.sync().finally(() => handle.close());
    await rename(temp, dest);
  } finally {
    rmSync(temp, { force: true });
  }
}

export const isAbort = (err: unknown): boolean => err instanceof Error && err.name === 'AbortError';
