/**
 * `feedback recover` on real SQLite files with 8 KiB of garbage written over them: the rows the
 * B-tree walk cannot reach (under a destroyed interior page) are salvaged page by page, and
 * nothing is salvaged that was not stored: every row that comes back equals the original.
 */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { FeedbackStore } from '../src/feedback/feedback-store.js';
import { checkDatabase, recoverDatabase } from '../src/feedback/recover.js';
import { tempDirs } from './helpers/feedback.js';

const tempDir = tempDirs('rerank-recover-');
const ROWS = 1_200;

type Row = Record<string, unknown>;
const read = (path: string, sql: string): Row[] => {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all() as Row[];
  } finally {
    db.close();
  }
};
const EVENTS = 'SELECT id, created_at, query, document, label, model_id, source, metadata, rerank_id, hex(pair_hash) AS h FROM feedback_events ORDER BY id';
const CALLS = 'SELECT id, rerank_id, created_at, query, model_id FROM rerank_calls ORDER BY id';
const CANDIDATES = 'SELECT rerank_id, idx, doc_id, text, score, logit, rank FROM rerank_candidates ORDER BY rerank_id, idx';

/** 1 200 labels in batches like a client's, some with documents long enough to need overflow pages, and a rerank log. */
function seed(path: string): void {
  const store = FeedbackStore.open(path);
  for (let b = 0; b < 30; b++) {
    store.record(
      Array.from({ length: 40 }, (_, i) => ({
        query: `query ${b}`,
        document: (i % 20 === 7 ? `long document ${b}.${i} ` : `document ${b}.${i} `).repeat(i % 20 === 7 ? 500 : 15),
        label: (i % 5) / 4,
        modelId: 'tiny-ce',
        source: b % 2 ? 'agent' : undefined,
        metadata: i % 3 ? { turn: i } : undefined,
      })),
    );
    store.logRerank({ query: `query ${b}`, modelId: 'tiny-ce', candidates: Array.from({ length: 4 }, (_, k) => ({ index: k, id: `d${k}`, text: `candidate ${b}.${k}`, score: k / 4, logit: k - 2 })) });
  }
  store.close();
}

/** Deterministic garbage (xorshift32), so a failure can be reproduced. */
function garbage(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

for (const [where, fraction] of [
  ['in the middle', 1 / 2],
  ['a quarter in', 1 / 4],
  ['three quarters in', 3 / 4],
] as const) {
  test(`8 KiB of garbage ${where}: at least 95 % of 1 200 labels come back, each exactly as stored`, (t) => {
    const db = join(tempDir(), 'feedback.db');
    seed(db);
    const original = { events: read(db, EVENTS), calls: read(db, CALLS), candidates: read(db, CANDIDATES) };
    assert.equal(original.events.length, ROWS);
    const size = statSync(db).size;
    const fd = openSync(db, 'r+');
    writeSync(fd, garbage(8192, 0x9e3779b9 ^ Math.round(fraction * 1000)), 0, 8192, Math.floor((size * fraction) / 4096) * 4096);
    closeSync(fd);
    assert.equal(checkDatabase(db).ok, false, 'the garbage damaged the file');

    const result = recoverDatabase(db);
    const events = read(db, EVENTS);
    const calls = read(db, CALLS);
    const candidates = read(db, CANDIDATES);
    t.diagnostic(
      `${where} (file ${size} bytes): feedback_events ${original.events.length} -> ${events.length}, rerank_calls ${original.calls.length} -> ${calls.length}, rerank_candidates ${original.candidates.length} -> ${candidates.length}; report ${JSON.stringify(result.rows)} salvaged ${JSON.stringify(result.salvaged)}`,
    );
    assert.ok(checkDatabase(db).ok, 'the recovered file passes integrity_check');
    assert.ok(events.length >= 0.95 * ROWS, `${events.length} of ${ROWS} labels recovered`);
    const byId = new Map(original.events.map((r) => [r.id, r]));
    for (const row of events) assert.deepEqual(row, byId.get(row.id), `row ${row.id} as stored`);
    const callById = new Map(original.calls.map((r) => [r.id, r]));
    for (const row of calls) assert.deepEqual(row, callById.get(row.id), `call ${row.id} as stored`);
    const candidateByKey = new Map(original.candidates.map((r) => [`${r.rerank_id}/${r.idx}`, r]));
    for (const row of candidates) assert.deepEqual(row, candidateByKey.get(`${row.rerank_id}/${row.idx}`), 'candidate as stored');
    assert.equal(result.rows.feedback_events, events.length, 'the report counts what is in the file');
  });
}

test('rows deleted stay deleted: pages on the freelist, and main-file pages the -wal supersedes, are not salvaged', (t) => {
  const dir = tempDir();
  const db = join(dir, 'feedback.db');
  seed(db);
  const writer = new Database(db);
  try {
    // Freed leaf pages keep their cells unless secure_delete zeroes them (feedback purge does).
    writer.pragma('secure_delete = OFF');
    writer.prepare('DELETE FROM feedback_events WHERE id > 900').run();
    writer.pragma('wal_checkpoint(TRUNCATE)');
    assert.ok((writer.pragma('freelist_count', { simple: true }) as number) > 10, 'deleted rows left pages on the freelist');
    writer.pragma('wal_autocheckpoint = 0');
    writer.prepare('DELETE FROM feedback_events WHERE id % 2 = 0').run();
    // The files as a crash leaves them: the deletion is committed in the -wal only.
    const image = join(dir, 'image.db');
    copyFileSync(db, image);
    copyFileSync(`${db}-wal`, `${image}-wal`);
    const result = recoverDatabase(image);
    const ids = read(image, 'SELECT id FROM feedback_events ORDER BY id').map((r) => r.id);
    t.diagnostic(`salvaged ${JSON.stringify(result.salvaged)}`);
    assert.deepEqual(ids, Array.from({ length: 450 }, (_, i) => 2 * i + 1));
  } finally {
    writer.close();
  }
});
