/**
 * JSON answers that may be large (a rerank of 1000 long documents returned with their text is
 * ~100 MB) without holding the event loop: res.json() stringifies, encodes and writes the whole
 * body in one go (~0.5 s for 95 MB), during which no other client is served. Here the text is
 * produced value by value, written in slices that respect the socket's backpressure, with a
 * turn of the event loop between slices. Small answers go out as res.json() would send them.
 */
import type { Response } from 'express';

/** Text gathered before a write; an answer that fits in one slice is sent with a Content-Length. */
const SLICE_CHARS = 64 * 1024;

/** The pieces of JSON.stringify(value), in order; their concatenation is exactly its result. */
export function* jsonPieces(value: unknown): Generator<string> {
  if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    yield JSON.stringify(value) ?? 'null';
    return;
  }
  if (Array.isArray(value)) {
    yield '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield ',';
      const item: unknown = value[i];
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') yield 'null';
      else yield* jsonPieces(item);
    }
    yield ']';
    return;
  }
  yield '{';
  let first = true;
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    yield `${first ? '' : ','}${JSON.stringify(key)}:`;
    first = false;
    yield* jsonPieces(item);
  }
  yield '}';
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Resolves when the socket takes more, or is gone. */
const drained = (res: Response) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    if (res.destroyed) resolve();
    else res.on('drain', done).on('close', done);
  });

/** Sends `body` as JSON with `status`; resolves once it is written (or the client is gone). */
export async function sendJson(res: Response, body: unknown, status = 200): Promise<void> {
  const pieces = jsonPieces(body);
  let slice = '';
  let piece = pieces.next();
  while (!piece.done && slice.length < SLICE_CHARS) {
    slice += piece.value;
    piece = pieces.next();
  }
  res.status(status);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  if (piece.done) {
    res.setHeader('Content-Length', Buffer.byteLength(slice));
    res.end(slice);
    return;
  }
  while (!res.destroyed) {
    const more = res.write(slice);
    slice = '';
    if (piece.done) break;
    await (more ? nextTurn() : drained(res));
    while (!piece.done && slice.length < SLICE_CHARS) {
      slice += piece.value;
      piece = pieces.next();
    }
  }
  if (!res.destroyed) res.end();
}
