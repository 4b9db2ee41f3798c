/**
 * JSON Lines of {"query", "document"} from a file or stdin, read as a stream so a large
 * file is never held whole.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

export type InputLine = { line: number; pair: { query: string; document: string } } | { line: number; error: string };

export async function* readPairs(inputPath: string | undefined): AsyncGenerator<InputLine> {
  const stream = inputPath ? createReadStream(inputPath, 'utf8') : process.stdin;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      yield { line, error: `line ${line}: not JSON (${(err as Error).message})` };
      continue;
    }
    const v = value as { query?: unknown; document?: unknown };
    if (typeof value !== 'object' || value === null || typeof v.query !== 'string' || typeof v.document !== 'string') {
      yield { line, error: `line ${line}: expected {"query": string, "document": string}` };
      continue;
    }
    yield { line, pair: { query: v.query, document: v.document } };
  }
}

/** Writes a line to stdout, waiting when the pipe is full. */
export async function writeLine(value: unknown): Promise<void> {
  if (!process.stdout.write(JSON.stringify(value) + '\n')) {
    await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
  }
}
