/**
 * Rows read straight from a SQLite file's pages, for `feedback recover`: when an interior page
 * of a table's B-tree is destroyed, every leaf below it is sound but out of the walk's reach.
 * Every table-leaf page (type 0x0D) not on the freelist is decoded here (cell pointer array,
 * varint record header, overflow chain), as SQLite would see it: the main file with the newest
 * committed pages of its -wal laid over it. Which table a row belongs to is told by its shape;
 * the caller keeps only rows that look right and that the walk did not already bring back.
 * Format: https://www.sqlite.org/fileformat2.html
 */
import { existsSync, readFileSync } from 'node:fs';

export type Value = null | number | bigint | string | Buffer;

export interface PageRow {
  page: number;
  rowid: bigint;
  values: Value[];
}

const HEADER = 'SQLite format 3\u0000';

class Malformed extends Error {}

/** The file's pages (1-based), newest version of each; undefined where the header is unreadable. */
function readPages(path: string): { pages: Map<number, Buffer>; usable: number; freelist: Set<number> } | undefined {
  const file = readFileSync(path);
  if (file.length < 100 || file.toString('latin1', 0, 16) !== HEADER) return undefined;
  const raw = file.readUInt16BE(16);
  const pageSize = raw === 1 ? 65_536 : raw;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) return undefined;
  // Text is decoded as UTF-8 below; the store never creates another encoding.
  if (file.readUInt32BE(56) > 1) return undefined;
  const usable = pageSize - file[20];
  const pages = new Map<number, Buffer>();
  for (let n = 1; n * pageSize <= file.length; n++) pages.set(n, file.subarray((n - 1) * pageSize, n * pageSize));
  overlayWal(`${path}-wal`, pageSize, pages);
  return { pages, usable, freelist: freelistPages(pages) };
}

/**
 * Lays the -wal's committed frames over the pages: a page's newest committed version wins, as
 * in SQLite's own reads. Frames are trusted only while their salts and running checksum hold,
 * and only up to the last commit frame among them.
 */
function overlayWal(path: string, pageSize: number, pages: Map<number, Buffer>): void {
  if (!existsSync(path)) return;
  const wal = readFileSync(path);
  if (wal.length < 32) return;
  const magic = wal.readUInt32BE(0);
  if ((magic & 0xfffffffe) !== 0x377f0682 || wal.readUInt32BE(8) !== pageSize) return;
  const word = magic & 1 ? (b: Buffer, i: number) => b.readUInt32BE(i) : (b: Buffer, i: number) => b.readUInt32LE(i);
  let s0 = 0;
  let s1 = 0;
  const sum = (b: Buffer, from: number, to: number) => {
    for (let i = from; i < to; i += 8) {
      s0 = (s0 + word(b, i) + s1) >>> 0;
      s1 = (s1 + word(b, i + 4) + s0) >>> 0;
    }
  };
  sum(wal, 0, 24);
  if (s0 !== wal.readUInt32BE(24) || s1 !== wal.readUInt32BE(28)) return;
  const salt = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  let pending: [number, Buffer][] = [];
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (wal.readUInt32BE(at + 8) !== salt[0] || wal.readUInt32BE(at + 12) !== salt[1]) break;
    sum(wal, at, at + 8);
    sum(wal, at + 24, at + 24 + pageSize);
    if (s0 !== wal.readUInt32BE(at + 16) || s1 !== wal.readUInt32BE(at + 20)) break;
    pending.push([wal.readUInt32BE(at), wal.subarray(at + 24, at + 24 + pageSize)]);
    const commitSize = wal.readUInt32BE(at + 4);
    if (commitSize > 0) {
      for (const [n, page] of pending) pages.set(n, page);
      for (const n of [...pages.keys()]) if (n > commitSize) pages.delete(n);
      pending = [];
    }
  }
}

/**
 * Pages on the freelist: they hold what was deleted (unless secure_delete zeroed it), which must
 * not come back. A freelist that cannot be followed to its end is followed as far as it goes.
 */
function freelistPages(pages: Map<number, Buffer>): Set<number> {
  const free = new Set<number>();
  const first = pages.get(1)!;
  let trunk = first.readUInt32BE(32);
  while (trunk !== 0 && !free.has(trunk)) {
    const page = pages.get(trunk);
    if (!page) break;
    free.add(trunk);
    const count = page.readUInt32BE(4);
    if (count > (page.length - 8) / 4) break;
    for (let i = 0; i < count; i++) free.add(page.readUInt32BE(8 + 4 * i));
    trunk = page.readUInt32BE(0);
  }
  return free;
}

/** A varint at `at`: its value and the offset just past it. */
function varint(b: Buffer, at: number, end: number): [bigint, number] {
  let v = 0n;
  for (let i = 0; i < 9; i++) {
    if (at + i >= end) throw new Malformed('varint past the end');
    const byte = b[at + i];
    if (i === 8) return [(v << 8n) | BigInt(byte), at + 9];
    v = (v << 7n) | BigInt(byte & 0x7f);
    if (byte < 0x80) return [v, at + i + 1];
  }
  throw new Malformed('unreachable');
}

/** A cell's whole payload: its local part, then the overflow chain. */
function payload(pages: Map<number, Buffer>, usable: number, page: Buffer, at: number, size: number): Buffer {
  const maxLocal = usable - 35;
  if (size <= maxLocal) {
    if (at + size > usable) throw new Malformed('cell past the page');
    return page.subarray(at, at + size);
  }
  const minLocal = Math.floor(((usable - 12) * 32) / 255) - 23;
  const k = minLocal + ((size - minLocal) % (usable - 4));
  const local = k <= maxLocal ? k : minLocal;
  if (at + local + 4 > usable) throw new Malformed('cell past the page');
  const parts = [page.subarray(at, at + local)];
  let got = local;
  let next = page.readUInt32BE(at + local);
  const seen = new Set<number>();
  while (got < size) {
    const overflow = pages.get(next);
    if (!overflow || seen.has(next)) throw new Malformed('broken overflow chain');
    seen.add(next);
    const take = Math.min(usable - 4, size - got);
    parts.push(overflow.subarray(4, 4 + take));
    got += take;
    next = overflow.readUInt32BE(0);
  }
  return Buffer.concat(parts, size);
}

/** A record's values, by the serial types in its header. */
function decodeRecord(rec: Buffer): Value[] {
  const [headerSize, first] = varint(rec, 0, rec.length);
  const end = Number(headerSize);
  if (end > rec.length || end < 1) throw new Malformed('record header past the record');
  const types: number[] = [];
  for (let at = first; at < end; ) {
    const [t, next] = varint(rec, at, end);
    types.push(Number(t));
    at = next;
  }
  const values: Value[] = [];
  let at = end;
  const take = (n: number) => {
    if (at + n > rec.length) throw new Malformed('value past the record');
    at += n;
    return at - n;
  };
  for (const t of types) {
    if (t === 0) values.push(null);
    else if (t >= 1 && t <= 6) {
      const n = [1, 2, 3, 4, 6, 8][t - 1];
      const from = take(n);
      const v = n === 8 ? rec.readBigInt64BE(from) : BigInt(rec.readIntBE(from, n));
      values.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
    } else if (t === 7) values.push(rec.readDoubleBE(take(8)));
    else if (t === 8 || t === 9) values.push(t - 8);
    else if (t >= 12) {
      const n = (t - 12) >> 1;
      const from = take(n);
      const bytes = rec.subarray(from, from + n);
      values.push(t % 2 === 0 ? Buffer.from(bytes) : new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } else throw new Malformed(`reserved serial type ${t}`);
  }
  if (at !== rec.length) throw new Malformed('record longer than its values');
  return values;
}

/**
 * Every row on every table-leaf page of the file that is not on the freelist, undefined where
 * the file's header cannot be read. A page whose cells do not all decode yields none of them:
 * a half-garbled page is not trusted.
 */
export function rowsFromPages(path: string): PageRow[] | undefined {
  const file = readPages(path);
  if (!file) return undefined;
  const { pages, usable, freelist } = file;
  const rows: PageRow[] = [];
  for (const [n, page] of pages) {
    if (freelist.has(n)) continue;
    const h = n === 1 ? 100 : 0;
    if (page[h] !== 0x0d) continue;
    try {
      const count = page.readUInt16BE(h + 3);
      if (h + 8 + 2 * count > usable) throw new Malformed('cell pointers past the page');
      const found: PageRow[] = [];
      for (let i = 0; i < count; i++) {
        const cell = page.readUInt16BE(h + 8 + 2 * i);
        if (cell < h + 8 + 2 * count || cell >= usable) throw new Malformed('cell pointer out of the page');
        const [size, afterSize] = varint(page, cell, usable);
        const [rowid, start] = varint(page, afterSize, usable);
        if (size > BigInt(pages.size) * BigInt(usable)) throw new Malformed('payload larger than the file');
        found.push({ page: n, rowid: BigInt.asIntN(64, rowid), values: decodeRecord(payload(pages, usable, page, start, Number(size))) });
      }
      rows.push(...found);
    } catch (err) {
      if (!(err instanceof Malformed || err instanceof RangeError || err instanceof TypeError)) throw err;
    }
  }
  return rows;
}
