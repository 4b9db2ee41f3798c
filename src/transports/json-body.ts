/**
 * JSON request bodies, parsed without stalling other clients.
 *
 * express.json() decodes and parses on the event loop: a 95 MB body takes ~0.3 s there, four at
 * once stall every other client for seconds and hold ~0.3 GB each. Here the raw body is read as
 * bytes (express.raw: same limit, same 413, gzip/deflate still inflated), small bodies are parsed
 * in place, large ones in a worker thread that hands back the parsed value, and no more than
 * LARGE_BODY_SLOTS large bodies are read and parsed at once (the others wait unread, held back by
 * TCP). A body whose parsed value has more JSON values than MAX_JSON_VALUES is refused before it
 * reaches this thread: copying a value back costs the event loop time per value as well as per byte
 * (v8.deserialize, the format postMessage uses, on this 2-core AVX2 EPYC: 200 000 numbers 7 ms,
 * 1000 strings of 95 KB 142 ms), and a 95 MB body of bare numbers holds ~47 million of them.
 */
import { Worker } from 'node:worker_threads';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

/** Parsed in place below this size: well under a millisecond of the event loop. */
export const INLINE_PARSE_BYTES = 256 * 1024;
/** Bodies this large (or of unknown length) wait for one of LARGE_BODY_SLOTS before they are read. */
const LARGE_BODY_BYTES = 8 * 1024 * 1024;
const LARGE_BODY_SLOTS = 2;
/**
 * The most JSON values (objects, arrays, strings, numbers…) a body may hold. The largest calls the
 * tools take, 1000 documents with an id and a few metadata fields each, need ~20 000.
 */
export const MAX_JSON_VALUES = 200_000;
/** A body that stops arriving for this long is dropped (the whole request is bounded by REQUEST_TIMEOUT_MS). */
export const BODY_IDLE_MS = 10_000;

/** What express.json's errors look like, so the error handlers after it answer in their own shape. */
type BodyError = Error & { status: number; type: string; expose: boolean };
const bodyError = (status: number, type: string, message: string): BodyError => Object.assign(new Error(message), { status, type, expose: true });

const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * The worker's source: decode, parse, count. Inline rather than a file, so it runs the same from
 * dist/ and under tsx.
 */
const PARSE_WORKER = `
const { parentPort } = require('node:worker_threads');
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });
function count(value, limit) {
  let n = 0;
  const stack = [value];
  while (stack.length) {
    const v = stack.pop();
    if (++n > limit) return n;
    if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) for (let i = 0; i < v.length; i++) stack.push(v[i]);
      else for (const k in v) stack.push(v[k]);
    }
  }
  return n;
}
parentPort.on('message', ({ id, bytes, limit }) => {
  try {
    const value = JSON.parse(decoder.decode(bytes));
    const n = count(value, limit);
    if (n > limit) parentPort.postMessage({ id, tooMany: true });
    else parentPort.postMessage({ id, value });
  } catch (err) {
    parentPort.postMessage({ id, error: err.message });
  }
});
`;

class ParseWorker {
  private worker: Worker | undefined;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (err: Error) => void }>();

  parse(bytes: Uint8Array): Promise<Reply> {
    const worker = this.start();
    const id = this.next++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A body Buffer of its own is moved, not copied; a slice of a shared pool is copied.
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
      const data = own ? bytes : new Uint8Array(bytes);
      worker.postMessage({ id, bytes: data, limit: MAX_JSON_VALUES }, [data.buffer as ArrayBuffer]);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(PARSE_WORKER, { eval: true });
    // An idle parser must not keep a finished process alive.
    worker.unref();
    worker.on('message', (reply: Reply & { id: number }) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      waiting?.resolve(reply);
    });
    const fail = (err: Error) => {
      this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the JSON parser thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}

type Reply = { value: unknown } | { tooMany: true } | { error: string };

/** Slots for large bodies; a waiter that hangs up gives its turn away without taking a slot. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(count: number) {
    this.free = count;
  }

  async take(req: Request): Promise<(() => void) | undefined> {
    if (this.free > 0) {
      this.free--;
      return () => this.give();
    }
    const turn = new Promise<void>((resolve) => this.waiting.push(resolve));
    const gone = new Promise<void>((resolve) => req.once('close', resolve));
    await Promise.race([turn, gone]);
    if (req.destroyed) {
      // Our turn may have come together with the hang-up: pass it on.
      void turn.then(() => this.give());
      return undefined;
    }
    return () => this.give();
  }

  private give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

const isJsonStart = (bytes: Uint8Array): boolean => {
  for (const b of bytes) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0xef || b === 0xbb || b === 0xbf) continue; // whitespace, a BOM
    return b === 0x7b || b === 0x5b; // { or [: express.json's strict mode
  }
  return false;
};

/**
 * Middleware in place of express.json({ limit }): sets req.body to the parsed value for JSON
 * content types (undefined for others and for an empty body), and passes express.json's errors on
 * (413 entity.too.large, 400 entity.parse.failed) for the error handlers after it.
 */
export function jsonBody(limit: number): RequestHandler {
  const raw = express.raw({ type: JSON_TYPES, limit });
  const slots = new Slots(LARGE_BODY_SLOTS);
  const parser = new ParseWorker();
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.body !== undefined || !req.is(JSON_TYPES)) {
      next();
      return;
    }
    const declared = Number(req.headers['content-length']);
    // Unknown length (chunked) counts as large; a declared length over the limit is refused unread.
    const needsSlot = !(declared < LARGE_BODY_BYTES) && !(declared > limit);
    void (async () => {
      const release = needsSlot ? await slots.take(req) : undefined;
      if (needsSlot && !release) return; // hung up while waiting
      try {
        // Without a handler for it, a timeout destroys the socket: a client that stalls mid-body is gone.
        req.setTimeout(BODY_IDLE_MS);
        await new Promise<void>((resolve, reject) => raw(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
        req.setTimeout(0);
        const bytes: unknown = req.body;
        if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
          req.body = undefined;
          next();
          return;
        }
        if (!isJsonStart(bytes)) throw bodyError(400, 'entity.parse.failed', 'request body is not a JSON object or array');
        if (bytes.length < INLINE_PARSE_BYTES) {
          try {
            req.body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
          } catch (err) {
            throw bodyError(400, 'entity.parse.failed', (err as Error).message);
          }
        } else {
          const reply = await parser.parse(bytes);
          if ('error' in reply) throw bodyError(400, 'entity.parse.failed', reply.error);
          if ('tooMany' in reply) throw bodyError(413, 'entity.too.many.values', `request body holds more than ${MAX_JSON_VALUES} JSON values; split the call (at most 1000 documents a call)`);
          req.body = reply.value;
        }
        next();
      } catch (err) {
        next(err);
      } finally {
        release?.();
      }
    })();
  };
}
