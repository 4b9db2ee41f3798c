/** Reading tokenizer files with a bound on their size, so a wrong or hostile file is refused in one line, not parsed. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/**
 * The largest tokenizer.json (or tokenizer_config.json) read: the largest real ones are the
 * 250 000-piece SentencePiece vocabularies of XLM-R models (~17 MB) and byte-level BPE files
 * with their merges (~10 MB for 150k-token vocabularies). Parsing costs ~0.3 s and ~10x the
 * file in memory per 100 MB, per tokenizer worker; anything over this is not a tokenizer we serve.
 */
export const MAX_TOKENIZER_FILE_BYTES = 64 * 1024 * 1024;

export class TokenizerFileError extends Error {}

/** The bytes of `path`, or a one-line error naming it when it is larger than MAX_TOKENIZER_FILE_BYTES or unreadable. */
export function readTokenizerFile(path: string, maxBytes = MAX_TOKENIZER_FILE_BYTES): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new TokenizerFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const { size } = fstatSync(fd);
    if (size > maxBytes) {
      throw new TokenizerFileError(
        `${path} is ${(size / 2 ** 20).toFixed(1)} MiB, over the ${maxBytes / 2 ** 20} MiB a tokenizer file may have (the largest real ones are ~17 MB): replace it with the model's own tokenizer file`,
      );
    }
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}
