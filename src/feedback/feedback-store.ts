/**
 * The feedback database: append-only relevance labels, plus a bounded log of rerank calls so
 * an agent can label results by index or id afterwards. Every write is one IMMEDIATE
 * transaction (the write lock is taken up front, so concurrent writers queue on the busy
 * timeout instead of failing mid-transaction) and commits with synchronous=FULL, so a
 * recorded label survives power loss. The file holds every query and candidate text, so a
 * file or directory created here is private to the user (0600 / 0700).
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { log } from '../log.js';
import { migrate, pairHash, registerFunctions, schemaVersion, SCHEMA_VERSION } from './schema.js';
import { selectTrainingRows, type ExportOptions, type TrainingRow } from './export.js';
import { readStats, type FeedbackStats } from './stats.js';
import { selectTrainingSet, type TrainingSet, type TrainingSetOptions } from './training-set.js';

export type { ExportOptions, TrainingRow } from './export.js';
export type { FeedbackStats } from './stats.js';

export class FeedbackError extends Error {}

/** How to get out of a corrupt database, in every error that reports one. */
export const recoveryHint = (path: string): string =>
  `run rerank-mcp feedback check --db ${path} to see the damage and rerank-mcp feedback recover --db ${path} to salvage what is readable into a new file (the damaged one is kept as a backup)`;

export interface FeedbackInput {
  query: string;
  document: string;
  documentId?: string;
  label: number;
  source?: string;
  sessionId?: string;
  metadata?: Record<string, unknown>;
  modelId?: string;
  modelScore?: number | null;
}

/** `repeats`: how many written events repeat a (query, document) pair stored before this write. */
export interface RecordResult {
  ids: number[];
  count: number;
  repeats: number;
}

export interface RerankCandidate {
  index: number;
  id?: string;
  text: string;
  score: number;
  logit: number;
}

export interface RerankCall {
  query: string;
  candidates: RerankCandidate[];
  modelId: string;
  source?: string;
  sessionId?: string;
}

export interface OpenOptions {
  /** The clock for timestamps and pruning; tests pass a fixed one. */
  now?: () => Date;
  /** false: the caller already ran quick_check (the server runs it in a worker thread). */
  quickCheck?: boolean;
}

/** What the connection is actually running with, as SQLite reports it. */
export interface ConnectionInfo {
  journalMode: string;
  synchronous: number;
  busyTimeoutMs: number;
  foreignKeys: boolean;
  schemaVersion: number;
}

const BUSY_TIMEOUT_MS = 10_000;
export const DAY_MS = 86_400_000;
/**
 * After a checkpoint SQLite truncates the WAL to this size, so one large rerank call (up to
 * ~100 MB of text) does not leave a WAL file of the same size behind for good.
 */
const JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024;

/** Bytes of query and candidate text a rerank call adds to the log, as SQLite stores them (UTF-8). */
export function rerankCallBytes(call: Pick<RerankCall, 'query' | 'candidates'>): number {
  return call.candidates.reduce((sum, c) => sum + Buffer.byteLength(c.text), Buffer.byteLength(call.query));
}

/**
 * SQLite's messages ("attempt to write a readonly database", "file is not a database") name
 * neither the file nor a way out; these do.
 */
export function explainDbError(err: unknown, path: string): Error {
  if (err instanceof FeedbackError) return err;
  const code = String((err as { code?: string }).code ?? '');
  const reason = (err as Error).message ?? String(err);
  const elsewhere = 'or pass --db (RERANK_FEEDBACK_DB) another path';
  if (code.startsWith('SQLITE_READONLY')) {
    return new FeedbackError(`${path} cannot be written (${reason}): give this user write permission on the file and its directory (SQLite writes ${path}-wal and -shm beside it), ${elsewhere}`);
  }
  if (code === 'SQLITE_NOTADB') return new FeedbackError(`${path} is not a SQLite database or its header is damaged (${reason}): ${recoveryHint(path)}; or move it away so a new one is created, ${elsewhere}`);
  if (code.startsWith('SQLITE_CORRUPT')) return new FeedbackError(`${path} is corrupt (${reason}): ${recoveryHint(path)}; or restore a backup, ${elsewhere}`);
  if (code.startsWith('SQLITE_CANTOPEN')) {
    return new FeedbackError(`cannot open ${path} (${reason}): check that it is a file (not a directory) and that this user can read and write it and its directory, ${elsewhere}`);
  }
  if (code === 'SQLITE_BUSY') {
    // Not a FeedbackError: the request was fine, the store is unavailable for now (REST answers 503).
    return new Error(`feedback database ${path} is locked by another process, which held its write lock for longer than this call could wait (${BUSY_TIMEOUT_MS / 1000} s): close the program that keeps a write transaction open on it (a sqlite3 shell, a backup tool, another server writing the same file) and send the feedback again, or pass --db (RERANK_FEEDBACK_DB) another path`);
  }
  if (code === 'SQLITE_FULL') return new FeedbackError(`${path}: the disk is full (${reason}): free space, lower --rerank-log-max-mb, ${elsewhere}`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR') {
    return new FeedbackError(`cannot create ${path} (${reason}): ${elsewhere} in a writable directory`);
  }
  return err instanceof Error ? err : new Error(reason);
}

/**
 * Creates the file empty (a valid, empty SQLite database) with mode 0600 before SQLite opens
 * it: SQLite gives the -wal and -shm files it creates later the database file's mode, so they
 * are private too, whenever they are recreated.
 */
function createPrivately(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  refuseNonFile(path);
  if (existsSync(path)) return tightenOwnFiles(path);
  // 'a' never truncates, so a file another process created meanwhile is left as it is.
  closeSync(openSync(path, 'a', 0o600));
}

/** A directory (or a FIFO, a device) at the path is never a database: say so rather than let SQLite or chmod touch it. */
function refuseNonFile(path: string): void {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return;
  }
  if (stat.isDirectory()) throw new FeedbackError(`${path} is a directory, not a feedback database: pass --db (RERANK_FEEDBACK_DB) a file path such as ${path}/feedback.db`);
  if (!stat.isFile()) throw new FeedbackError(`${path} is not a regular file: pass --db (RERANK_FEEDBACK_DB) the path of a SQLite file`);
}

/**
 * Earlier builds created the database 0644: the queries and documents in it
 * were readable by every local user. Files this user owns lose their group and other bits (and say
 * so once); a file someone else owns is left to them.
 */
function tightenOwnFiles(path: string): void {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    let stat;
    try {
      stat = statSync(file);
    } catch {
      continue;
    }
    if ((stat.mode & 0o077) === 0 || stat.uid !== process.getuid?.()) continue;
    const private_ = stat.mode & 0o700;
    chmodSync(file, private_);
    log(`${file} was readable by other users (mode ${(stat.mode & 0o777).toString(8)}); it holds queries and documents, so it is now ${private_.toString(8)}`);
  }
}

/**
 * Runs `step` until it stops failing with SQLITE_BUSY, for up to the busy timeout. SQLite skips
 * the busy handler when waiting could deadlock (two connections switching a new file to WAL at
 * once: one gets SQLITE_BUSY at once), so the timeout alone does not cover a concurrent first open.
 */
function retryWhileBusy<T>(step: () => T): T {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      return step();
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      // open() is synchronous; a short blocking pause lets the other connection finish.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10 + Math.random() * 40);
    }
  }
}

/** A connection with the settings every write relies on. */
function connect(path: string): Database.Database {
  // The busy timeout is set before anything else, so every statement waits for other processes;
  // the WAL switch also retries where SQLite refuses to wait.
  const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  try {
    retryWhileBusy(() => db.pragma('journal_mode = WAL'));
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

type WalProblem = { kind: 'deleted' } | { kind: 'truncated'; size: number; need: number; backfilled: boolean } | null;

/** One feedback_events row, as both record() and labelRerank() write it. */
export interface EventRow {
  query: string;
  document: string;
  documentId: string | null;
  label: number;
  source: string | null;
  sessionId: string | null;
  modelId: string | null;
  modelScore: number | null;
  metadata: string | null;
  rerankId: string | null;
}

export interface CallRow {
  query: string;
  model_id: string;
  source: string | null;
  session_id: string | null;
}

export interface CandidateRow {
  idx: number;
  doc_id: string | null;
  text: string;
  score: number;
}

const SQL = {
  // The hash finds the few rows that can match through its index; the texts confirm the match.
  pairExists: 'SELECT 1 FROM feedback_events WHERE pair_hash = ? AND query = ? AND document = ? LIMIT 1',
  insertEvent: `INSERT INTO feedback_events
    (created_at, source, session_id, model_id, model_score, query, document, document_id, label, metadata, rerank_id, pair_hash)
    VALUES (@createdAt, @source, @sessionId, @modelId, @modelScore, @query, @document, @documentId, @label, @metadata, @rerankId, @pairHash)`,
  insertCall: `INSERT INTO rerank_calls (rerank_id, created_at, query, model_id, source, session_id)
    VALUES (@rerankId, @createdAt, @query, @modelId, @source, @sessionId)`,
  insertCandidate: `INSERT INTO rerank_candidates (rerank_id, idx, doc_id, text, score, logit, rank)
    VALUES (@rerankId, @idx, @docId, @text, @score, @logit, @rank)`,
  getCall: 'SELECT query, model_id, source, session_id FROM rerank_calls WHERE rerank_id = ?',
  getCandidates: 'SELECT idx, doc_id, text, score FROM rerank_candidates WHERE rerank_id = ? ORDER BY idx',
  // LIMIT -1 means no limit; an empty cutoff is older than every timestamp. Candidates go by ON DELETE CASCADE.
  prune: `DELETE FROM rerank_calls
    WHERE created_at < @cutoff OR id NOT IN (SELECT id FROM rerank_calls ORDER BY id DESC LIMIT @keep)`,
  // octet_length reads the stored size without loading the text itself.
  logBytes: `SELECT (SELECT COALESCE(SUM(octet_length(query)), 0) FROM rerank_calls)
    + (SELECT COALESCE(SUM(octet_length(text)), 0) FROM rerank_candidates) AS bytes`,
  callsOldestFirst: `SELECT c.id, octet_length(c.query)
      + (SELECT COALESCE(SUM(octet_length(t.text)), 0) FROM rerank_candidates AS t WHERE t.rerank_id = c.rerank_id) AS bytes
    FROM rerank_calls AS c ORDER BY c.id`,
  deleteCallsUpTo: 'DELETE FROM rerank_calls WHERE id <= ?',
  purgeCalls: 'DELETE FROM rerank_calls WHERE created_at < ?',
  purgeEvents: 'DELETE FROM feedback_events WHERE created_at < ?',
} as const;

/** What a byte-cap eviction removed, and the bytes of text the log still holds. */
export interface Eviction {
  calls: number;
  bytes: number;
  remaining: number;
}

/** Which file a handle has open: the pair that tells it from a file put at the same path later. */
interface FileIdentity {
  dev: number;
  ino: number;
}

export class FeedbackStore {
  private db!: Database.Database;
  private statements!: { [K in keyof typeof SQL]: Database.Statement };
  private readonly now: () => Date;
  /** Descriptors of our own on the -wal and -shm files SQLite has open, once they exist (see walProblem). */
  private wal: { fd: number; ino: number } | undefined;
  private shmFd: number | undefined;

  private constructor(
    readonly path: string,
    db: Database.Database,
    now: () => Date,
    /** A descriptor of our own on the file SQLite opened: fstat on it sees the file even once it is unlinked. */
    private readonly fd: number,
    private readonly identity: FileIdentity,
  ) {
    this.now = now;
    this.attach(db);
  }

  /**
   * Opens (creating the file and its directory if needed), checks the file's integrity and
   * migrates the schema forward.
   */
  static open(path: string, options: OpenOptions = {}): FeedbackStore {
    let db: Database.Database | undefined;
    let fd: number | undefined;
    try {
      createPrivately(path);
      db = connect(path);
      fd = openSync(path, 'r');
      const { dev, ino } = fstatSync(fd);
      // quick_check reads every page once (about 0.2 s for 145 MB, scripts/feedback-integrity.ts):
      // damage is reported when the file is opened, not when a later write or export stumbles on it.
      if (options.quickCheck !== false) throwIfDamaged(path, quickCheck(db));
      const found = schemaVersion(db);
      if (found > SCHEMA_VERSION) {
        throw new FeedbackError(`${path} has feedback schema version ${found}; this rerank-mcp knows up to ${SCHEMA_VERSION}, upgrade it`);
      }
      registerFunctions(db);
      migrate(db);
      return new FeedbackStore(path, db, options.now ?? (() => new Date()), fd, { dev, ino });
    } catch (err) {
      db?.close();
      if (fd !== undefined) closeSync(fd);
      throw explainDbError(err, path);
    }
  }

  private attach(db: Database.Database): void {
    this.db = db;
    this.statements = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as FeedbackStore['statements'];
    this.watchWalFiles();
  }

  /** How long the next statements wait for another process's lock. */
  setBusyTimeout(ms: number): void {
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(ms))}`);
  }

  /**
   * Null while the file at `path` is the one this handle writes to; otherwise what happened to
   * it. SQLite keeps writing to a deleted or replaced file through its open descriptor, so a
   * write is acknowledged only after this says the path still leads to it. Two stat calls: cheap.
   */
  fileChange(): string | null {
    let stat;
    try {
      stat = statSync(this.path);
    } catch {
      return 'was deleted';
    }
    if (stat.isDirectory()) return 'was replaced by a directory';
    // nlink 0: ours was unlinked, and a new file may have been given its inode number.
    if (stat.dev !== this.identity.dev || stat.ino !== this.identity.ino || fstatSync(this.fd).nlink === 0) return 'was replaced by another file';
    return null;
  }

  /**
   * Opens our own descriptors on -wal and -shm once SQLite has created them. They stay open
   * until the connection closes: closing any descriptor of a file drops every POSIX lock this
   * process holds on it, SQLite's included.
   */
  private watchWalFiles(): void {
    if (!this.wal) {
      try {
        const fd = openSync(`${this.path}-wal`, 'r+');
        this.wal = { fd, ino: fstatSync(fd).ino };
      } catch {
        // Not created yet: SQLite creates it with the first transaction in WAL mode.
      }
    }
    if (this.shmFd === undefined) {
      try {
        this.shmFd = openSync(`${this.path}-shm`, 'r');
      } catch {
        // likewise
      }
    }
  }

  /**
   * What the files at the path say about the WAL SQLite writes to. 'deleted': the path no longer
   * leads to it (deleted, or another file put there), so its frames would die with this process.
   * 'truncated': it is shorter than the frames the wal-index says it holds, or its header is not
   * the one the wal-index was built from, so SQLite would copy zeros into the database file at
   * the next checkpoint. Reliable inside a write transaction, when no other writer can move
   * the wal-index or the WAL.
   */
  private walProblem(): WalProblem {
    this.watchWalFiles();
    let stat;
    try {
      stat = statSync(`${this.path}-wal`);
    } catch {
      // Inside a transaction SQLite has the WAL open (it creates it), so a missing one was deleted.
      return { kind: 'deleted' };
    }
    if (!this.wal) return null;
    if (stat.ino !== this.wal.ino || fstatSync(this.wal.fd).nlink === 0) return { kind: 'deleted' };
    const index = this.walIndex();
    if (!index || index.mxFrame === 0) return null;
    const need = 32 + index.mxFrame * (24 + index.pageSize);
    const header = Buffer.alloc(24);
    const got = readSync(this.wal.fd, header, 0, 24, 0);
    const magic = got === 24 ? header.readUInt32BE(0) : 0;
    const sound = stat.size >= need && (magic === 0x377f0682 || magic === 0x377f0683) && header.subarray(16, 24).equals(index.salt);
    return sound ? null : { kind: 'truncated', size: stat.size, need, backfilled: index.backfilled >= index.mxFrame };
  }

  /** The wal-index header SQLite keeps at the start of -shm (https://sqlite.org/walformat.html): native byte order. */
  private walIndex(): { mxFrame: number; pageSize: number; salt: Buffer; backfilled: number } | undefined {
    if (this.shmFd === undefined) return undefined;
    const b = Buffer.alloc(100);
    if (readSync(this.shmFd, b, 0, 100, 0) < 100) return undefined;
    // Two copies of the header: they differ only while a writer is mid-update, which our write lock excludes.
    if (!b.subarray(0, 48).equals(b.subarray(48, 96)) || b[12] === 0) return undefined;
    const read32 = os.endianness() === 'LE' ? (o: number) => b.readUInt32LE(o) : (o: number) => b.readUInt32BE(o);
    const page = os.endianness() === 'LE' ? b.readUInt16LE(14) : b.readUInt16BE(14);
    return { mxFrame: read32(16), pageSize: page === 1 ? 65536 : page, salt: Buffer.from(b.subarray(32, 40)), backfilled: read32(96) };
  }

  /**
   * Refuses when the main file was cut: pages SQLite reads from it come back as zeros, and a
   * checkpoint builds on them. Its header says how many pages it held at the last checkpoint
   * (https://sqlite.org/fileformat.html); a file shorter than that, or with no header, was cut.
   * A VACUUM by another process shrinks the file and the count together, so it passes.
   */
  private checkMainFile(): void {
    const size = fstatSync(this.fd).size;
    const header = Buffer.alloc(100);
    const got = size >= 100 ? readSync(this.fd, header, 0, 100, 0) : 0;
    let cut = got < 100 || !header.subarray(0, 16).equals(SQLITE_MAGIC);
    if (!cut && header.readUInt32BE(92) === header.readUInt32BE(24)) {
      const page = header.readUInt16BE(16);
      cut = size < header.readUInt32BE(28) * (page === 1 ? 65536 : page);
    }
    if (cut) throw new Error(`feedback database ${this.path} was truncated while open (${size} bytes left), so feedback is not stored: stop whatever cuts it, then ${recoveryHint(this.path)}`);
  }

  /**
   * Runs a write transaction and returns only once what it committed is in the files at the
   * path: the main file and the WAL are checked before the work and again after the commit,
   * each time under the write lock, where no other writer moves the WAL or the wal-index.
   */
  private write<T>(work: () => T): T {
    this.checkMainFile();
    const result = this.locked(work);
    this.locked(() => undefined);
    this.checkMainFile();
    return result;
  }

  private locked<T>(work: () => T, restarted = false): T {
    let problem: WalProblem = null;
    const result = this.db
      .transaction(() => {
        problem = this.walProblem();
        if (problem?.kind !== 'truncated') return work();
        // The frames past the cut are gone and those before it cannot be told from zeros: emptied,
        // the WAL makes a checkpoint (at close, or by another process) stop at once instead of
        // copying zeros into the database file, which keeps everything up to its last checkpoint.
        if (!problem.backfilled) ftruncateSync(this.wal!.fd, 0);
        return undefined;
      })
      .immediate();
    const found = problem as WalProblem;
    if (found?.kind === 'deleted') this.rescueDeletedWal();
    if (found?.kind !== 'truncated') return result as T;
    if (found.backfilled && !restarted) {
      // Everything the cut WAL held was already in the database file: start the WAL afresh.
      this.checkpointOrThrow('was truncated');
      return this.locked(work, true);
    }
    const message = `feedback database ${this.path}: ${this.path}-wal was truncated while open (${found.size} bytes, its committed frames need ${found.need}), so what was written since its last checkpoint is lost and this feedback was not stored: stop whatever cuts it, send the feedback again, and ${recoveryHint(this.path)}`;
    try {
      // A new connection rebuilds the wal-index from the emptied WAL, so later writes start a sound one.
      this.reconnect();
    } catch (err) {
      throw new Error(`${message}; reopening it failed too (${(err as Error).message.replace(/\s+/g, ' ')})`);
    }
    throw new Error(message);
  }

  /**
   * The WAL was deleted (or another file put at its path) while SQLite writes to it through its
   * descriptor: its frames, the write just made included, would be gone with this process. A
   * TRUNCATE checkpoint copies them into the database file (synced); a new connection then
   * writes a new WAL at the path.
   */
  private rescueDeletedWal(): void {
    this.checkpointOrThrow('was deleted');
    this.reconnect();
    log(`warning: ${this.path}-wal was deleted while open; what it held was moved into ${this.path} and a new WAL started`);
  }

  private checkpointOrThrow(what: string): void {
    const [row] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
    if (row.busy !== 0) {
      throw new Error(`feedback database ${this.path}: ${this.path}-wal ${what} while open and another connection kept it from being moved into ${this.path}, so this feedback is not known to be stored: close the other programs that have the file open and send it again`);
    }
  }

  /**
   * A new connection on the same file, with new -wal and -shm descriptors. Migrated again: a
   * WAL cut before its first checkpoint took the tables with it.
   */
  private reconnect(): void {
    this.db.close();
    this.closeWalFiles();
    const db = connect(this.path);
    try {
      registerFunctions(db);
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.attach(db);
  }

  private closeWalFiles(): void {
    if (this.wal) closeSync(this.wal.fd);
    if (this.shmFd !== undefined) closeSync(this.shmFd);
    this.wal = undefined;
    this.shmFd = undefined;
  }

  /** Runs a statement or transaction, with SQLite's errors explained in terms of this file. */
  private guard<T>(work: () => T): T {
    try {
      return work();
    } catch (err) {
      throw explainDbError(err, this.path);
    }
  }

  /** Appends every item or, if any is invalid, none. */
  record(items: FeedbackInput[]): RecordResult {
    const rows = items.map((item, i) => eventRow(item, `item ${i}`));
    return this.guard(() => this.write(() => this.insertEvents(rows)));
  }

  /** Logs a rerank call and its candidates; returns the rerank_id to label them by later. */
  logRerank(call: RerankCall): string {
    checkRerankCall(call);
    const rerankId = randomUUID();
    const ranked = rankCandidates(call.candidates);
    this.guard(() =>
      this.write(() => {
        this.statements.insertCall.run({ rerankId, createdAt: this.timestamp(), query: call.query, modelId: call.modelId, source: call.source ?? null, sessionId: call.sessionId ?? null });
        ranked.forEach((c, i) => {
          this.statements.insertCandidate.run({ rerankId, idx: c.index, docId: c.id ?? null, text: c.text, score: c.score, logit: c.logit, rank: i + 1 });
        });
      }),
    );
    return rerankId;
  }

  /**
   * Labels candidates of a logged rerank call: `relevant` get 1, `irrelevant` 0. Entries are
   * candidate indexes (numbers) or candidate ids (strings). The events copy the call's query
   * and the candidates' text and score, so they outlive the call's pruning.
   */
  labelRerank(rerankId: string, relevant: (number | string)[], irrelevant: (number | string)[], meta: { source?: string; sessionId?: string } = {}): RecordResult {
    // Looked up inside the write transaction, so a concurrent prune cannot remove the call halfway.
    return this.guard(() =>
      this.write(() => {
        const call = this.statements.getCall.get(rerankId) as CallRow | undefined;
        if (!call) throw new FeedbackError(`unknown rerank_id "${rerankId}" (never logged here, or pruned from the rerank log)`);
        const candidates = this.statements.getCandidates.all(rerankId) as CandidateRow[];
        const rows = labelEvents(rerankId, call, candidates, relevant, irrelevant, meta);
        return this.insertEvents(rows);
      }),
    );
  }

  /**
   * Deletes rerank calls (with their candidates) beyond the newest `maxCalls` or older than
   * `maxDays`; Infinity turns a limit off. Returns how many calls went. Labels are untouched.
   */
  pruneRerankLog(limits: { maxCalls: number; maxDays: number }): number {
    const { maxCalls, maxDays } = limits;
    if (!(maxCalls >= 0) || !(maxDays >= 0)) throw new FeedbackError(`pruneRerankLog: maxCalls and maxDays must be >= 0, got ${maxCalls} and ${maxDays}`);
    const cutoff = Number.isFinite(maxDays) ? new Date(this.now().getTime() - maxDays * DAY_MS).toISOString() : '';
    const keep = Number.isFinite(maxCalls) ? Math.floor(maxCalls) : -1;
    return this.guard(() => this.write(() => this.statements.prune.run({ cutoff, keep }).changes));
  }

  /** Bytes of query and candidate text the rerank log holds (what --rerank-log-max-mb bounds). */
  rerankLogBytes(): number {
    return this.guard(() => (this.statements.logBytes.get() as { bytes: number }).bytes);
  }

  /**
   * Deletes the oldest rerank calls until the log's text fits in `targetBytes`, if it holds more
   * than `maxBytes`. A large eviction is followed by a TRUNCATE checkpoint, so the WAL frames of
   * the deleted text do not linger on disk.
   */
  evictRerankLogBytes(maxBytes: number, targetBytes = maxBytes): Eviction {
    if (!(maxBytes >= 0) || !(targetBytes >= 0)) throw new FeedbackError(`evictRerankLogBytes: byte limits must be >= 0, got ${maxBytes} and ${targetBytes}`);
    const eviction = this.guard(() =>
      this.write((): Eviction => {
          let remaining = this.rerankLogBytes();
          if (remaining <= maxBytes) return { calls: 0, bytes: 0, remaining };
          let calls = 0;
          let bytes = 0;
          let lastId = -1;
          for (const row of this.statements.callsOldestFirst.iterate() as Iterable<{ id: number; bytes: number }>) {
            if (remaining <= targetBytes) break;
            remaining -= row.bytes;
            bytes += row.bytes;
            lastId = row.id;
            calls++;
          }
          if (calls > 0) this.statements.deleteCallsUpTo.run(lastId);
          return { calls, bytes, remaining };
        }),
    );
    if (eviction.bytes >= JOURNAL_SIZE_LIMIT) this.checkpoint();
    return eviction;
  }

  /**
   * Deletes rerank-log calls and/or feedback events created before `before`. Deleted text is
   * overwritten (secure_delete) and the WAL checkpointed and truncated, so it does not stay
   * readable in free pages or old WAL frames.
   */
  purge(before: Date, what: { log: boolean; feedback: boolean }): { calls: number; events: number } {
    if (Number.isNaN(before.getTime())) throw new FeedbackError('purge: invalid date');
    const cutoff = before.toISOString();
    const result = this.guard(() => {
      this.db.pragma('secure_delete = ON');
      try {
        return this.write(() => ({
          calls: what.log ? this.statements.purgeCalls.run(cutoff).changes : 0,
          events: what.feedback ? this.statements.purgeEvents.run(cutoff).changes : 0,
        }));
      } finally {
        this.db.pragma('secure_delete = OFF');
      }
    });
    this.checkpoint();
    return result;
  }

  /** Copies the WAL into the database and truncates it; skipped quietly while readers hold it. */
  private checkpoint(): void {
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // Busy: SQLite checkpoints again on its own, and journal_size_limit trims the file then.
    }
  }

  /** Training rows: one per distinct (query, document) pair, plus mined hard negatives if asked. */
  exportRows(options: ExportOptions): TrainingRow[] {
    const { aggregate, mineNegatives = 0 } = options;
    if (aggregate !== 'latest' && aggregate !== 'mean') throw new FeedbackError(`aggregate must be latest or mean, got ${String(aggregate)}`);
    if (!Number.isInteger(mineNegatives) || mineNegatives < 0) throw new FeedbackError(`mineNegatives must be a whole number >= 0, got ${mineNegatives}`);
    // A read transaction, so the rows and the mined negatives come from one snapshot.
    return this.guard(() => this.db.transaction(() => selectTrainingRows(this.db, options))());
  }

  /** What `rerank-mcp finetune` trains and evaluates on, from one snapshot. */
  trainingSet(options: TrainingSetOptions): TrainingSet {
    return this.guard(() => this.db.transaction(() => selectTrainingSet(this.db, options))());
  }

  stats(): FeedbackStats {
    return this.guard(() => this.db.transaction(() => readStats(this.db))());
  }

  /** PRAGMA quick_check's findings; empty when the file is sound. */
  quickCheck(): string[] {
    return this.guard(() => quickCheck(this.db));
  }

  connectionInfo(): ConnectionInfo {
    const get = (name: string) => this.db.pragma(name, { simple: true });
    return {
      journalMode: get('journal_mode') as string,
      synchronous: get('synchronous') as number,
      busyTimeoutMs: get('busy_timeout') as number,
      foreignKeys: get('foreign_keys') === 1,
      schemaVersion: schemaVersion(this.db),
    };
  }

  close(): void {
    this.db.close();
    this.closeWalFiles();
    closeSync(this.fd);
  }

  /** Must run inside a write transaction. */
  private insertEvents(rows: EventRow[]): RecordResult {
    // Judged before inserting, so a pair sent twice in one batch is not a repeat of itself.
    const hashes = rows.map((r) => pairHash(r.query, r.document));
    const repeats = rows.filter((r, i) => this.statements.pairExists.get(hashes[i], r.query, r.document) !== undefined).length;
    const createdAt = this.timestamp();
    const ids = rows.map((r, i) => Number(this.statements.insertEvent.run({ ...r, createdAt, pairHash: hashes[i] }).lastInsertRowid));
    return { ids, count: ids.length, repeats };
  }

  /** ISO 8601 UTC: sorts as text, and its first 10 characters are the day. */
  private timestamp(): string {
    return this.now().toISOString();
  }
}

/** One line for quick_check's findings, naming the file and the way out. */
export function throwIfDamaged(path: string, problems: string[]): void {
  if (problems.length > 0) throw new FeedbackError(`${path} is corrupt (${problems[0]}${problems.length > 1 ? `, and ${problems.length - 1} more problem(s)` : ''}): ${recoveryHint(path)}`);
}

function quickCheck(db: Database.Database): string[] {
  const rows = db.pragma('quick_check') as { quick_check: string }[];
  const problems = rows.map((r) => r.quick_check);
  return problems.length === 1 && problems[0] === 'ok' ? [] : problems;
}

/** The events a labelling of a logged call writes; refuses unknown, ambiguous or contradictory references. */
export function labelEvents(rerankId: string, call: CallRow, candidates: CandidateRow[], relevant: (number | string)[], irrelevant: (number | string)[], meta: { source?: string; sessionId?: string }): EventRow[] {
  const labels = new Map<CandidateRow, number>();
  for (const [refs, label] of [[relevant, 1], [irrelevant, 0]] as const) {
    for (const ref of refs) {
      const candidate = findCandidate(candidates, ref, rerankId);
      if (labels.get(candidate) === 1 - label) throw new FeedbackError(`candidate ${describeRef(ref)} of rerank_id "${rerankId}" is listed as both relevant and irrelevant`);
      labels.set(candidate, label);
    }
  }
  return [...labels].map(([c, label]): EventRow => ({
    query: call.query,
    document: c.text,
    documentId: c.doc_id,
    label,
    source: meta.source ?? call.source,
    sessionId: meta.sessionId ?? call.session_id,
    modelId: call.model_id,
    modelScore: c.score,
    metadata: null,
    rerankId,
  }));
}

/** Checks a rerank call before it is logged: the texts storable, the indexes distinct. */
export function checkRerankCall(call: RerankCall): void {
  checkText(call.query, 'query');
  checkText(call.modelId, 'modelId');
  const seen = new Set<number>();
  for (const c of call.candidates) {
    if (!Number.isInteger(c.index) || c.index < 0 || seen.has(c.index)) throw new FeedbackError(`candidate index ${c.index} is not a distinct non-negative integer`);
    seen.add(c.index);
    checkText(c.text, `candidate ${c.index} text`);
  }
}

/** Candidates in the order the rerank tool returns them: best score first, ties by input position. */
export const rankCandidates = (candidates: RerankCandidate[]): RerankCandidate[] => [...candidates].sort((a, b) => b.score - a.score || a.index - b.index);

/** Validates one input up front, so a bad item fails the batch before anything is written. */
export function eventRow(item: FeedbackInput, where: string): EventRow {
  checkText(item.query, `${where}: query`);
  checkText(item.document, `${where}: document`);
  const { label, modelScore, metadata } = item;
  if (typeof label !== 'number' || !Number.isFinite(label) || label < 0 || label > 1) {
    throw new FeedbackError(`${where}: label must be a number from 0 to 1, got ${String(label)}`);
  }
  if (modelScore != null && (typeof modelScore !== 'number' || !Number.isFinite(modelScore))) {
    throw new FeedbackError(`${where}: modelScore must be a finite number or null, got ${String(modelScore)}`);
  }
  return {
    query: item.query,
    document: item.document,
    documentId: optionalText(item.documentId, `${where}: documentId`),
    label,
    source: optionalText(item.source, `${where}: source`),
    sessionId: optionalText(item.sessionId, `${where}: sessionId`),
    modelId: optionalText(item.modelId, `${where}: modelId`),
    modelScore: modelScore ?? null,
    metadata: metadata === undefined ? null : metadataJson(metadata, where),
    rerankId: null,
  };
}

// A lone surrogate cannot be encoded as UTF-8: SQLite would silently store U+FFFD instead.
const LONE_SURROGATE = /\p{Surrogate}/u;

function checkText(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string') throw new FeedbackError(`${what} must be a string`);
  if (LONE_SURROGATE.test(value)) throw new FeedbackError(`${what} contains a lone UTF-16 surrogate, which cannot be stored as UTF-8`);
}

function optionalText(value: string | undefined, what: string): string | null {
  if (value === undefined) return null;
  checkText(value, what);
  return value;
}

function metadataJson(metadata: unknown, where: string): string {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new FeedbackError(`${where}: metadata must be a JSON object`);
  try {
    return JSON.stringify(metadata);
  } catch (err) {
    throw new FeedbackError(`${where}: metadata is not serializable as JSON (${(err as Error).message})`);
  }
}

function findCandidate(candidates: CandidateRow[], ref: number | string, rerankId: string): CandidateRow {
  const matches = typeof ref === 'number' ? candidates.filter((c) => c.idx === ref) : candidates.filter((c) => c.doc_id === ref);
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) throw new FeedbackError(`candidate id "${ref}" matches ${matches.length} candidates of rerank_id "${rerankId}"; label them by index`);
  const indexes = candidates.map((c) => c.idx);
  const known = candidates.length === 0 ? 'it has no candidates' : `its ${candidates.length} candidates have indexes ${Math.min(...indexes)} to ${Math.max(...indexes)}`;
  throw new FeedbackError(`rerank_id "${rerankId}" has no candidate ${describeRef(ref)} (${known})`);
}

function describeRef(ref: number | string): string {
  return typeof ref === 'number' ? `with index ${ref}` : `with id "${ref}"`;
}
