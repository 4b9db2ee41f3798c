/**
 * `rerank-mcp feedback check|recover`: what to do with a damaged feedback database. better-sqlite3
 * does not ship SQLite's recovery extension (the sqlite3 CLI's `.recover`), and VACUUM INTO stops
 * at the first bad page, so recovery reads each table in rowid order and steps over the ranges
 * that cannot be read, then reads the file page by page for the rows that walk could not reach
 * (those under a destroyed interior page): every row on a sound leaf page comes back, indexes are
 * rebuilt from the rows.
 */
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { FeedbackError } from './feedback-store.js';
import { rowsFromPages, type PageRow, type Value } from './page-salvage.js';
import { migrate, registerFunctions } from './schema.js';

export interface CheckResult {
  ok: boolean;
  /** integrity_check's findings, or why the file could not even be read. */
  problems: string[];
}

/** PRAGMA integrity_check (every page, every index entry) without changing the file. */
export function checkDatabase(path: string): CheckResult {
  refuseMissing(path);
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true, timeout: 10_000 });
    const rows = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
    const ok = rows.length === 1 && rows[0] === 'ok';
    return { ok, problems: ok ? [] : rows };
  } catch (err) {
    return { ok: false, problems: [`${(err as Error).message} (${String((err as { code?: string }).code ?? 'error')})`] };
  } finally {
    db?.close();
  }
}

export interface RecoverResult {
  db: string;
  backup: string;
  /** Rows copied into the new file, per table. */
  rows: Record<string, number>;
  /** Stretches of rowids that could not be read and were stepped over, per table. */
  skipped: Record<string, number>;
  /** Of `rows`, those read page by page because the B-tree walk could not reach them, per table. */
  salvaged: Record<string, number>;
}

/** Tables in the order they are copied: calls before the candidates that refer to them. */
const TABLES = ['feedback_events', 'rerank_calls', 'rerank_candidates'] as const;
const BATCH = 500;

/**
 * Salvages what is readable into a new database and moves it into place; the damaged file (and
 * its -wal, which may hold committed rows) is renamed to `<path>.damaged-<time>`, never deleted.
 * No server may have the file open meanwhile: its writes would go to the backup.
 */
export function recoverDatabase(path: string, now: Date = new Date()): RecoverResult {
  refuseMissing(path);
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const backup = `${path}.damaged-${stamp}`;
  const tmp = `${path}.recovering-${process.pid}`;
  if (existsSync(backup)) throw new FeedbackError(`${backup} already exists: wait a second and run rerank-mcp feedback recover again`);
  rmSync(tmp, { force: true });
  rmSync(`${tmp}-wal`, { force: true });
  rmSync(`${tmp}-shm`, { force: true });

  let source: Database.Database;
  try {
    // Read-write, not readonly: a readonly connection cannot replay a -wal without its -shm.
    source = new Database(path, { fileMustExist: true, timeout: 10_000 });
    source.pragma('query_only = ON');
  } catch (err) {
    throw new FeedbackError(`cannot read ${path} at all (${(err as Error).message}): its header is destroyed; try the sqlite3 command-line tool's .recover (sqlite3 ${path} .recover | sqlite3 new.db), or restore a backup`);
  }
  // Private like the file it replaces: it holds the same queries and documents.
  closeSync(openSync(tmp, 'w', 0o600));
  const target = new Database(tmp);
  const result: RecoverResult = { db: path, backup, rows: {}, skipped: {}, salvaged: {} };
  try {
    target.pragma('journal_mode = DELETE');
    registerFunctions(target);
    migrate(target);
    target.pragma('foreign_keys = OFF');
    for (const table of TABLES) {
      const copied = copyTable(source, target, table);
      result.rows[table] = copied.rows;
      result.skipped[table] = copied.skipped;
    }
    const salvaged = salvagePages(path, source, target);
    for (const table of TABLES) {
      result.salvaged[table] = salvaged[table] ?? 0;
      result.rows[table] += result.salvaged[table];
    }
    target.transaction(() => {
      // Candidates whose call was on a lost page cannot be labelled or mined: drop them.
      result.rows.rerank_candidates -= target.prepare('DELETE FROM rerank_candidates WHERE rerank_id NOT IN (SELECT rerank_id FROM rerank_calls)').run().changes;
      target.prepare('UPDATE feedback_events SET pair_hash = rerank_pair_hash(query, document) WHERE pair_hash IS NULL').run();
    })();
    const check = (target.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
    if (check.join() !== 'ok') throw new FeedbackError(`the recovered copy ${tmp} fails its own integrity check (${check[0]}); ${path} is unchanged`);
  } catch (err) {
    target.close();
    source.close();
    rmSync(tmp, { force: true });
    throw err instanceof FeedbackError ? err : new FeedbackError(`recovering ${path} failed (${(err as Error).message}); ${path} is unchanged: try the sqlite3 command-line tool's .recover, or restore a backup`);
  }
  target.close();
  source.close();
  // The -wal goes with the damaged file: left at the path, SQLite would replay it onto the new one.
  renameSync(path, backup);
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, backup + suffix);
  }
  renameSync(tmp, path);
  return result;
}

const isText = (v: Value | undefined): v is string => typeof v === 'string';
const isNumber = (v: Value | undefined): v is number => typeof v === 'number';
const isInteger = (v: Value | undefined) => Number.isInteger(v);
const optional = (v: Value | undefined, is: (v: Value | undefined) => boolean) => v === null || v === undefined || is(v);
const isTime = (v: Value | undefined) => isText(v) && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v);

/**
 * What a row of each table looks like on a page (a rowid-alias id is stored as NULL), strict
 * enough that the tables cannot be mistaken for each other or for SQLite's own.
 */
const SHAPES: Record<(typeof TABLES)[number], (r: Record<string, Value | undefined>) => boolean> = {
  feedback_events: (r) =>
    r.id === null &&
    isTime(r.created_at) &&
    isText(r.query) &&
    isText(r.document) &&
    isNumber(r.label) &&
    r.label >= 0 &&
    r.label <= 1 &&
    optional(r.model_score, isNumber) &&
    [r.source, r.session_id, r.model_id, r.document_id, r.metadata, r.rerank_id].every((v) => optional(v, isText)) &&
    optional(r.pair_hash, Buffer.isBuffer),
  rerank_calls: (r) => r.id === null && isText(r.rerank_id) && isTime(r.created_at) && isText(r.query) && isText(r.model_id) && optional(r.source, isText) && optional(r.session_id, isText),
  rerank_candidates: (r) => isText(r.rerank_id) && isInteger(r.idx) && optional(r.doc_id, isText) && isText(r.text) && isNumber(r.score) && isNumber(r.logit) && isInteger(r.rank),
};

/**
 * Adds the rows found on the file's leaf pages that the B-tree walk did not bring back: a row
 * whose key (id; rerank_id and idx for candidates) is already in the copy is the same row, read
 * the sound way, and is left alone. Returns the rows added per table.
 */
function salvagePages(path: string, source: Database.Database, target: Database.Database): Record<string, number> {
  const found = rowsFromPages(path);
  if (!found) return {};
  const added: Record<string, number> = {};
  const tables = TABLES.map((table) => {
    // The record's columns are the source's, in its order (an older schema may lack the last ones).
    const sourceColumns = (source.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name);
    const targetColumns = new Set((target.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name));
    const columns = sourceColumns.filter((c) => targetColumns.has(c) && c !== 'pair_hash');
    const insert = target.prepare(`INSERT OR IGNORE INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
    return { table, sourceColumns, columns, insert };
  });
  target.transaction((rows: PageRow[]) => {
    for (const { rowid, values } of rows) {
      for (const { table, sourceColumns, columns, insert } of tables) {
        if (values.length > sourceColumns.length) continue;
        const row: Record<string, Value | undefined> = Object.fromEntries(sourceColumns.map((c, i) => [c, values[i]]));
        if (!SHAPES[table](row)) continue;
        // The id is the rowid; pair_hash is computed afresh from the texts, below.
        if (table !== 'rerank_candidates') row.id = rowid;
        added[table] = (added[table] ?? 0) + insert.run(...columns.map((c) => row[c] ?? null)).changes;
        break;
      }
    }
  })(found);
  return added;
}

function refuseMissing(path: string): void {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new FeedbackError(`no feedback database at ${path}: pass --db (or set RERANK_FEEDBACK_DB) to the database to check`);
  }
  if (!stat.isFile()) throw new FeedbackError(`${path} is not a regular file: pass --db the SQLite file itself`);
}

/**
 * Copies one table in rowid order, in batches; where a batch fails it goes row by row, and where
 * a row cannot be reached it probes ever further rowids until a read succeeds again.
 */
function copyTable(source: Database.Database, target: Database.Database, table: string): { rows: number; skipped: number } {
  const sourceColumns = new Set((source.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name));
  const columns = (target.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name).filter((c) => sourceColumns.has(c));
  if (columns.length === 0) return { rows: 0, skipped: 0 };
  const list = columns.map((c) => `"${c}"`).join(', ');
  const select = (limit: number) => source.prepare(`SELECT rowid AS rerank_rowid_, ${list} FROM "${table}" WHERE rowid > ? ORDER BY rowid LIMIT ${limit}`);
  const batch = select(BATCH);
  const single = select(1);
  const probe = source.prepare(`SELECT rowid AS r FROM "${table}" WHERE rowid > ? ORDER BY rowid LIMIT 1`);
  const insert = target.prepare(`INSERT OR IGNORE INTO "${table}" (${list}) VALUES (${columns.map(() => '?').join(', ')})`);
  const write = target.transaction((rows: Record<string, unknown>[]) => {
    for (const row of rows) insert.run(...columns.map((c) => row[c]));
  });
  let after: number | bigint = Number.MIN_SAFE_INTEGER;
  let rows = 0;
  let skipped = 0;
  source.defaultSafeIntegers(true);
  try {
    for (;;) {
      let got: Record<string, unknown>[];
      try {
        got = batch.all(after) as Record<string, unknown>[];
      } catch {
        try {
          got = single.all(after) as Record<string, unknown>[];
        } catch {
          const resume = skipUnreadable(probe, after);
          skipped++;
          if (resume === undefined) break;
          after = resume;
          continue;
        }
      }
      if (got.length === 0) break;
      write(got);
      rows += got.length;
      after = got[got.length - 1].rerank_rowid_ as bigint;
    }
  } finally {
    source.defaultSafeIntegers(false);
  }
  return { rows, skipped };
}

/** The rowid just before the next readable row past `after`, or undefined when none is found. */
function skipUnreadable(probe: Database.Statement, after: number | bigint): bigint | undefined {
  const from = BigInt(after);
  for (let step = 1n; step < 1n << 62n; step *= 2n) {
    try {
      const row = probe.get(from + step) as { r: bigint } | undefined;
      if (row === undefined) return undefined;
      return row.r - 1n;
    } catch {
      // still inside the damaged range
    }
  }
  return undefined;
}
