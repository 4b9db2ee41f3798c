/**
 * The feedback database schema as an ordered list of migrations; PRAGMA user_version records
 * how many have run. Migrations are only ever appended: an existing one never changes, since
 * databases in users' data directories already ran it.
 */
import { createHash } from 'node:crypto';
import type { Database } from 'better-sqlite3';

/**
 * 16 bytes of SHA-256 over the pair: the duplicate check looks rows up by it instead of reading
 * every stored text of the query (a write then cost a scan of all of them, seconds for a query
 * labelled often with long documents). The texts are still compared, so a collision is harmless.
 */
export function pairHash(query: string, document: string): Buffer {
  const hash = createHash('sha256');
  hash.update(`${Buffer.byteLength(query)}:`);
  hash.update(query);
  hash.update(document);
  return hash.digest().subarray(0, 16);
}

/** SQL functions the migrations call; registered on every connection before migrate(). */
export function registerFunctions(db: Database): void {
  db.function('rerank_pair_hash', { deterministic: true }, (query, document) => pairHash(String(query), String(document)));
}

export const MIGRATIONS: readonly string[] = [
  // 1: append-only feedback events, and the bounded log of rerank calls they can point back to.
  `
  CREATE TABLE feedback_events (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,            -- ISO 8601 UTC, so text order is time order
    source      TEXT,
    session_id  TEXT,
    model_id    TEXT,
    model_score REAL,                     -- the model's score when the label was given
    query       TEXT NOT NULL,
    document    TEXT NOT NULL,            -- full text, so pruning the rerank log never loses a label
    document_id TEXT,
    label       REAL NOT NULL CHECK (label >= 0 AND label <= 1),
    metadata    TEXT,                     -- JSON object
    rerank_id   TEXT                      -- not a foreign key: the call it names may be pruned
  );
  -- On the query alone: indexing the documents too would store every text twice, and a query
  -- has few events to scan for its document.
  CREATE INDEX feedback_events_query ON feedback_events (query);
  CREATE INDEX feedback_events_rerank ON feedback_events (rerank_id) WHERE rerank_id IS NOT NULL;

  CREATE TABLE rerank_calls (
    id         INTEGER PRIMARY KEY,       -- insertion order, which pruning treats as age
    rerank_id  TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    query      TEXT NOT NULL,
    model_id   TEXT NOT NULL,
    source     TEXT,
    session_id TEXT
  );
  CREATE INDEX rerank_calls_created ON rerank_calls (created_at);

  CREATE TABLE rerank_candidates (
    rerank_id TEXT NOT NULL REFERENCES rerank_calls (rerank_id) ON DELETE CASCADE,
    idx       INTEGER NOT NULL,           -- position in the caller's candidate list
    doc_id    TEXT,
    text      TEXT NOT NULL,
    score     REAL NOT NULL,
    logit     REAL NOT NULL,
    rank      INTEGER NOT NULL,           -- 1 = best score in the call
    PRIMARY KEY (rerank_id, idx)
  );
  `,
  // 2: the duplicate check's index (see pairHash); rows written before it get their hash here.
  `
  ALTER TABLE feedback_events ADD COLUMN pair_hash BLOB;
  UPDATE feedback_events SET pair_hash = rerank_pair_hash(query, document);
  CREATE INDEX feedback_events_pair ON feedback_events (pair_hash);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Runs the migrations the file has not seen. Several processes may open a fresh file at once,
 * so the version is read again inside an IMMEDIATE transaction (which holds the write lock):
 * whoever gets the lock second finds the work done and runs nothing.
 */
export function migrate(db: Database): void {
  if (schemaVersion(db) >= SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let version = schemaVersion(db); version < SCHEMA_VERSION; version++) {
      db.exec(MIGRATIONS[version]);
      db.pragma(`user_version = ${version + 1}`);
    }
  }).immediate();
}
