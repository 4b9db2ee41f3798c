/**
 * Stands between stdin and the SDK's stdio transport. The SDK closes the whole transport
 * when a line outgrows its buffer, which would leave the client waiting forever; here an
 * oversized line is discarded as it streams in and answered with an error for its request
 * id, and the session carries on. Complete lines are passed on one per chunk (object mode on
 * the readable side, so a reader never sees two lines run together), through `rewrite` when
 * given (it returns the lines to pass on instead: none drops the line).
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';

const KEEP = 4096;
const NEWLINE = 0x0a;

export interface OversizedLine {
  bytes: number;
  id: string | number | undefined;
  isToolCall: boolean;
}

/** The request id of a JSON-RPC line known only by its first and last bytes. */
export function requestIdOf(head: string, tail: string): string | number | undefined {
  // The SDK's client writes the id last, most others write it first, before any params.
  const value = String.raw`(-?\d+|"(?:[^"\\]|\\.)*")`;
  const atEnd = new RegExp(String.raw`"id"\s*:\s*${value}\s*\}\s*$`).exec(tail);
  const atStart = new RegExp(String.raw`^\s*\{(?:\s*"(?:jsonrpc|method)"\s*:\s*"[^"]*"\s*,)*\s*"id"\s*:\s*${value}`).exec(head);
  const raw = atEnd?.[1] ?? atStart?.[1];
  const id: unknown = raw === undefined ? undefined : JSON.parse(raw);
  // An id that JSON.parse rounds (beyond 2^53) would be echoed as a different one.
  return typeof id === 'string' || Number.isSafeInteger(id) ? (id as string | number) : undefined;
}

export function guardLines(
  input: Readable,
  maxLineBytes: number,
  onOversized: (line: OversizedLine) => void,
  rewrite: (line: Buffer) => Buffer[] = (line) => [line],
): Readable {
  let parts: Buffer[] = [];
  let size = 0;
  let dropping = false;
  let head = '';
  let tail = Buffer.alloc(0);

  const guard = new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      let start = 0;
      while (start < chunk.length) {
        const newline = chunk.indexOf(NEWLINE, start);
        const end = newline === -1 ? chunk.length : newline + 1;
        const piece = chunk.subarray(start, end);
        start = end;
        if (!dropping && size + piece.length > maxLineBytes + 1) {
          dropping = true;
          head = Buffer.concat([...parts, piece]).subarray(0, KEEP).toString('utf8');
          parts = [];
        }
        size += piece.length;
        if (dropping) {
          tail = Buffer.concat([tail, piece]).subarray(-KEEP);
        } else {
          parts.push(piece);
        }
        if (newline === -1) continue;
        if (dropping) {
          const tailText = tail.toString('utf8');
          onOversized({ bytes: size - 1, id: requestIdOf(head, tailText), isToolCall: /"method"\s*:\s*"tools\/call"/.test(head + tailText) });
        } else {
          for (const out of rewrite(Buffer.concat(parts))) this.push(out);
        }
        parts = [];
        size = 0;
        dropping = false;
        tail = Buffer.alloc(0);
      }
      done();
    },
    flush(done: TransformCallback) {
      if (!dropping && size > 0) for (const out of rewrite(Buffer.concat(parts))) this.push(out);
      done();
    },
  });
  return input.pipe(guard);
}
