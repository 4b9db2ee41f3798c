/** The feedback store against real SQLite files in fresh temp directories: no mocks. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { defaultDbPath, resolveDbPath } from '../src/feedback/db-path.js';
import { csvField, writeCsv, writeJsonl, type TrainingRow } from '../src/feedback/export.js';
import { FeedbackError, FeedbackStore, type FeedbackInput, type RerankCandidate } from '../src/feedback/feedback-store.js';
import { SCHEMA_VERSION } from '../src/feedback/schema.js';
import { clock, tempDirs } from './helpers/feedback.js';

const tempDir = tempDirs('rerank-feedback-');

/** A path one directory below a fresh temp dir, so open() has to create the parent. */
function tempDb(): string {
  return join(tempDir(), 'nested', 'feedback.db');
}

const pair = (query: string, document: string, label: number, extra: Partial<FeedbackInput> = {}): FeedbackInput => ({ query, document, label, ...extra });

function eventCount(store: FeedbackStore): number {
  return store.stats().events;
}

/** An independent connection, to see what is actually on disk. */
function rawQuery<T>(path: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

describe('database path', () => {
  test('defaults to the platform user data dir', () => {
    assert.equal(defaultDbPath({}, 'linux', '/home/u'), '/home/u/.local/share/rerank-mcp/feedback.db');
    assert.equal(defaultDbPath({ XDG_DATA_HOME: '/data' }, 'linux', '/home/u'), '/data/rerank-mcp/feedback.db');
    assert.equal(defaultDbPath({ XDG_DATA_HOME: 'relative' }, 'linux', '/home/u'), '/home/u/.local/share/rerank-mcp/feedback.db');
    assert.equal(defaultDbPath({}, 'darwin', '/Users/u'), '/Users/u/Library/Application Support/rerank-mcp/feedback.db');
    assert.equal(defaultDbPath({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Local\\rerank-mcp\\feedback.db');
    assert.equal(defaultDbPath({}, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Local\\rerank-mcp\\feedback.db');
  });

  test('--db beats RERANK_FEEDBACK_DB beats the default', () => {
    assert.equal(resolveDbPath('/a/flag.db', { RERANK_FEEDBACK_DB: '/b/env.db' }), '/a/flag.db');
    assert.equal(resolveDbPath(undefined, { RERANK_FEEDBACK_DB: '/b/env.db' }), '/b/env.db');
    assert.equal(resolveDbPath(undefined, { RERANK_FEEDBACK_DB: '', XDG_DATA_HOME: '/x' }), defaultDbPath({ XDG_DATA_HOME: '/x' }));
    assert.equal(resolveDbPath('rel.db', {}), resolve('rel.db'));
  });
});

describe('opening', () => {
  test('migrates an empty file, and reopening changes nothing', () => {
    const path = tempDb();
    const store = FeedbackStore.open(path);
    assert.equal(store.path, path);
    assert.equal(store.connectionInfo().schemaVersion, SCHEMA_VERSION);
    store.record([pair('q', 'd', 1)]);
    store.close();
    const tables = () => rawQuery<{ name: string }>(path, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").map((r) => r.name);
    assert.deepEqual(tables(), ['feedback_events', 'rerank_calls', 'rerank_candidates']);

    const again = FeedbackStore.open(path);
    assert.equal(again.connectionInfo().schemaVersion, SCHEMA_VERSION);
    assert.equal(eventCount(again), 1);
    again.close();
    assert.deepEqual(tables(), ['feedback_events', 'rerank_calls', 'rerank_candidates']);
    assert.equal(rawQuery<{ user_version: number }>(path, 'PRAGMA user_version')[0].user_version, SCHEMA_VERSION);
  });

  test('WAL, synchronous=FULL, busy timeout and foreign keys are in effect', () => {
    const path = tempDb();
    const store = FeedbackStore.open(path);
    assert.deepEqual(store.connectionInfo(), { journalMode: 'wal', synchronous: 2, busyTimeoutMs: 10_000, foreignKeys: true, schemaVersion: SCHEMA_VERSION });
    store.close();
    // WAL is a property of the file, so another connection sees it too.
    assert.equal(rawQuery<{ journal_mode: string }>(path, 'PRAGMA journal_mode')[0].journal_mode, 'wal');
  });

  test('refuses a file from a newer schema', () => {
    const path = join(tempDir(), 'future.db');
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => FeedbackStore.open(path), (err: Error) => err instanceof FeedbackError && /newer|knows up to/.test(err.message));
  });
});

describe('record', () => {
  test('appends every event and counts repeats of pairs stored before the write', () => {
    const store = FeedbackStore.open(tempDb());
    const first = store.record([pair('q1', 'a', 1), pair('q1', 'b', 0)]);
    assert.equal(first.count, 2);
    assert.equal(first.repeats, 0);
    assert.equal(first.ids.length, 2);
    assert.ok(first.ids[1] > first.ids[0]);

    const second = store.record([pair('q1', 'a', 0), pair('q1', 'a', 1), pair('q1', 'c', 1)]);
    assert.deepEqual([second.count, second.repeats], [3, 2]);
    // Twice in one batch is not a repeat of itself.
    assert.deepEqual(store.record([pair('q2', 'x', 1), pair('q2', 'x', 1)]).repeats, 0);
    assert.equal(eventCount(store), 7);
    store.close();
  });

  test('stores every field', () => {
    const path = tempDb();
    const store = FeedbackStore.open(path, clock());
    store.record([
      pair('q', 'd', 0.25, { documentId: 'doc-1', source: 'agent', sessionId: 's1', metadata: { why: 'cited' }, modelId: 'm1', modelScore: 0.7 }),
      pair('q', 'e', 1),
    ]);
    store.close();
    const rows = rawQuery(path, 'SELECT created_at, source, session_id, model_id, model_score, query, document, document_id, label, metadata, rerank_id FROM feedback_events ORDER BY id');
    assert.deepEqual(rows, [
      { created_at: '2025-03-01T12:00:00.000Z', source: 'agent', session_id: 's1', model_id: 'm1', model_score: 0.7, query: 'q', document: 'd', document_id: 'doc-1', label: 0.25, metadata: '{"why":"cited"}', rerank_id: null },
      { created_at: '2025-03-01T12:00:00.000Z', source: null, session_id: null, model_id: null, model_score: null, query: 'q', document: 'e', document_id: null, label: 1, metadata: null, rerank_id: null },
    ]);
  });

  test('an invalid label fails the whole batch and writes nothing', () => {
    const store = FeedbackStore.open(tempDb());
    store.record([pair('q', 'kept', 1)]);
    for (const label of [Infinity, -Infinity, -0.1, 1.5, NaN, '1' as unknown as number]) {
      assert.throws(() => store.record([pair('q', 'ok', 1), pair('q', 'bad', label)]), (err: Error) => err instanceof FeedbackError && /item 1: label/.test(err.message), `label ${String(label)}`);
    }
    assert.throws(() => store.record([pair('q', 'ok', 1, { modelScore: NaN })]), FeedbackError);
    assert.equal(eventCount(store), 1);
    // The bounds themselves are fine.
    assert.equal(store.record([pair('q', 'zero', 0), pair('q', 'one', 1)]).count, 2);
    store.close();
  });
});

// Emoji with ZWJ and skin tone, RTL with marks, NUL, combining marks, BOM, line/paragraph separators, NEL, CSV specials.
const AWKWARD = [
  'family 👩‍👩‍👧‍👦 and 👍🏽',
  'שלום עולם \u200F مرحبا بالعالم',
  'before\u0000after',
  'e\u0301 vs \u00e9, Z\u0351\u0336a\u0328\u0300',
  '\uFEFFbom and \u2028 LS \u2029 PS \u0085 NEL',
  'comma, "quote", CR\r LF\n CRLF\r\n tab\t end',
];

describe('unicode', () => {
  test('round-trips byte-identical through the database and both export formats', async () => {
    const dir = tempDir();
    const store = FeedbackStore.open(join(dir, 'feedback.db'));
    store.record(AWKWARD.map((text, i) => pair(text, AWKWARD[(i + 1) % AWKWARD.length] + text, i % 2)));
    const rows = store.exportRows({ aggregate: 'latest' });
    store.close();
    const expected = AWKWARD.map((text, i) => ({ sentence_0: text, sentence_1: AWKWARD[(i + 1) % AWKWARD.length] + text, label: i % 2 }));
    assert.deepEqual(rows, expected);
    // Byte-level, not just ===: NUL must not truncate anything.
    assert.ok(rows.every((r, i) => Buffer.from(r.sentence_0).equals(Buffer.from(AWKWARD[i]))));
    assert.equal(rows[2].sentence_0.length, 'before\u0000after'.length);

    const jsonl = join(dir, 'out.jsonl');
    await writeTo(jsonl, (s) => writeJsonl(rows, s));
    const lines = readFileSync(jsonl, 'utf8').split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, rows.length);
    assert.deepEqual(lines.map((l) => JSON.parse(l)), expected);
    // Python's splitlines() must see one row per line too.
    assert.ok(lines.every((l) => !/[\r\u0085\u2028\u2029]/.test(l)));

    const csv = join(dir, 'out.csv');
    await writeTo(csv, (s) => writeCsv(rows, s));
    const parsed = parseCsv(readFileSync(csv, 'utf8'));
    assert.deepEqual(parsed[0], ['sentence_0', 'sentence_1', 'label']);
    assert.deepEqual(parsed.slice(1), expected.map((r) => [r.sentence_0, r.sentence_1, String(r.label)]));
  });

  test('a lone surrogate is refused rather than silently replaced', () => {
    const store = FeedbackStore.open(tempDb());
    assert.throws(() => store.record([pair('q\uD800', 'd', 1)]), /lone UTF-16 surrogate/);
    assert.equal(eventCount(store), 0);
    store.close();
  });
});

describe('rerank log', () => {
  const candidates: RerankCandidate[] = [
    { index: 0, id: 'doc-a', text: 'alpha', score: 0.2, logit: -1.4 },
    { index: 1, id: 'doc-b', text: 'beta', score: 0.9, logit: 2.2 },
    { index: 2, text: 'gamma', score: 0.5, logit: 0 },
    { index: 3, id: 'doc-d', text: 'delta', score: 0.7, logit: 0.8 },
  ];

  test('logs the call with candidates ranked by score', () => {
    const path = tempDb();
    const store = FeedbackStore.open(path, clock());
    const id = store.logRerank({ query: 'q', candidates, modelId: 'm', source: 'tool', sessionId: 's' });
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    store.close();
    assert.deepEqual(rawQuery(path, 'SELECT rerank_id, created_at, query, model_id, source, session_id FROM rerank_calls'), [
      { rerank_id: id, created_at: '2025-03-01T12:00:00.000Z', query: 'q', model_id: 'm', source: 'tool', session_id: 's' },
    ]);
    assert.deepEqual(rawQuery(path, 'SELECT idx, doc_id, text, score, logit, rank FROM rerank_candidates ORDER BY idx'), [
      { idx: 0, doc_id: 'doc-a', text: 'alpha', score: 0.2, logit: -1.4, rank: 4 },
      { idx: 1, doc_id: 'doc-b', text: 'beta', score: 0.9, logit: 2.2, rank: 1 },
      { idx: 2, doc_id: null, text: 'gamma', score: 0.5, logit: 0, rank: 3 },
      { idx: 3, doc_id: 'doc-d', text: 'delta', score: 0.7, logit: 0.8, rank: 2 },
    ]);
  });

  test('labels candidates by index and by id, with the logged score', () => {
    const path = tempDb();
    const store = FeedbackStore.open(path);
    const id = store.logRerank({ query: 'q', candidates, modelId: 'm', source: 'tool', sessionId: 's' });
    const result = store.labelRerank(id, [2, 'doc-b'], ['doc-a'], { sessionId: 's2' });
    assert.deepEqual([result.count, result.repeats], [3, 0]);
    assert.equal(store.labelRerank(id, [2], [], {}).repeats, 1);
    store.close();
    assert.deepEqual(rawQuery(path, 'SELECT query, document, document_id, label, model_score, model_id, source, session_id, rerank_id FROM feedback_events ORDER BY id'), [
      { query: 'q', document: 'gamma', document_id: null, label: 1, model_score: 0.5, model_id: 'm', source: 'tool', session_id: 's2', rerank_id: id },
      { query: 'q', document: 'beta', document_id: 'doc-b', label: 1, model_score: 0.9, model_id: 'm', source: 'tool', session_id: 's2', rerank_id: id },
      { query: 'q', document: 'alpha', document_id: 'doc-a', label: 0, model_score: 0.2, model_id: 'm', source: 'tool', session_id: 's2', rerank_id: id },
      { query: 'q', document: 'gamma', document_id: null, label: 1, model_score: 0.5, model_id: 'm', source: 'tool', session_id: 's', rerank_id: id },
    ]);
  });

  test('an unknown rerank_id, index or id names it and writes nothing', () => {
    const store = FeedbackStore.open(tempDb());
    const id = store.logRerank({ query: 'q', candidates, modelId: 'm' });
    const fails = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (err: Error) => err instanceof FeedbackError && pattern.test(err.message));
    fails(() => store.labelRerank('no-such-id', [0], [], {}), /unknown rerank_id "no-such-id"/);
    fails(() => store.labelRerank(id, [0, 7], [], {}), /no candidate with index 7 .*indexes 0 to 3/);
    fails(() => store.labelRerank(id, [0], ['doc-zzz'], {}), /no candidate with id "doc-zzz"/);
    fails(() => store.labelRerank(id, [1], ['doc-b'], {}), /both relevant and irrelevant/);
    assert.equal(eventCount(store), 0);
    store.close();
  });

  test('an id shared by two candidates is ambiguous', () => {
    const store = FeedbackStore.open(tempDb());
    const id = store.logRerank({ query: 'q', candidates: [{ index: 0, id: 'x', text: 'a', score: 1, logit: 1 }, { index: 1, id: 'x', text: 'b', score: 0, logit: 0 }], modelId: 'm' });
    assert.throws(() => store.labelRerank(id, ['x'], [], {}), /matches 2 candidates/);
    assert.equal(store.labelRerank(id, [1], [], {}).count, 1);
    store.close();
  });

  test('pruning drops the oldest calls beyond maxCalls or maxDays, never labels', () => {
    const path = tempDb();
    const time = clock();
    const store = FeedbackStore.open(path, time);
    const ids: string[] = [];
    for (let day = 0; day < 6; day++) {
      ids.push(store.logRerank({ query: `q${day}`, candidates, modelId: 'm' }));
      time.advanceDays(1);
    }
    // Now is day 6; calls are 6..1 days old.
    store.labelRerank(ids[0], [1], [0], {});
    const remaining = () => rawQuery<{ query: string }>(path, 'SELECT query FROM rerank_calls ORDER BY id').map((r) => r.query);
    const candidateRows = () => rawQuery<{ n: number }>(path, 'SELECT COUNT(*) AS n FROM rerank_candidates')[0].n;

    assert.equal(store.pruneRerankLog({ maxCalls: Infinity, maxDays: Infinity }), 0);
    assert.equal(store.pruneRerankLog({ maxCalls: 5, maxDays: Infinity }), 1);
    assert.deepEqual(remaining(), ['q1', 'q2', 'q3', 'q4', 'q5']);
    assert.equal(store.pruneRerankLog({ maxCalls: 100, maxDays: 3.5 }), 2);
    assert.deepEqual(remaining(), ['q3', 'q4', 'q5']);
    assert.equal(candidateRows(), 3 * candidates.length);
    assert.equal(store.pruneRerankLog({ maxCalls: 0, maxDays: 100 }), 3);
    assert.equal(candidateRows(), 0);
    assert.throws(() => store.pruneRerankLog({ maxCalls: -1, maxDays: 1 }), FeedbackError);

    // The labels on the pruned first call keep their full text.
    assert.deepEqual(store.exportRows({ aggregate: 'latest' }), [
      { sentence_0: 'q0', sentence_1: 'beta', label: 1 },
      { sentence_0: 'q0', sentence_1: 'alpha', label: 0 },
    ]);
    assert.throws(() => store.labelRerank(ids[0], [1], [], {}), /pruned/);
    store.close();
  });
});

describe('export', () => {
  test('latest takes the newest label, mean averages; rows follow first appearance', () => {
    const store = FeedbackStore.open(tempDb());
    store.record([pair('q', 'a', 1), pair('q', 'b', 0)]);
    store.record([pair('q', 'a', 0), pair('q', 'b', 1), pair('r', 'c', 0.25)]);
    store.record([pair('q', 'a', 1)]);
    assert.deepEqual(store.exportRows({ aggregate: 'latest' }), [
      { sentence_0: 'q', sentence_1: 'a', label: 1 },
      { sentence_0: 'q', sentence_1: 'b', label: 1 },
      { sentence_0: 'r', sentence_1: 'c', label: 0.25 },
    ]);
    assert.deepEqual(store.exportRows({ aggregate: 'mean' }), [
      { sentence_0: 'q', sentence_1: 'a', label: 2 / 3 },
      { sentence_0: 'q', sentence_1: 'b', label: 0.5 },
      { sentence_0: 'r', sentence_1: 'c', label: 0.25 },
    ]);
    assert.throws(() => store.exportRows({ aggregate: 'median' as 'mean' }), FeedbackError);
    assert.throws(() => store.exportRows({ aggregate: 'latest', mineNegatives: 1.5 }), FeedbackError);
    store.close();
  });

  test('mines unlabeled candidates ranked above a relevant one', () => {
    const store = FeedbackStore.open(tempDb());
    const candidate = (index: number, text: string, score: number): RerankCandidate => ({ index, text, score, logit: score });
    // Input order differs from rank order on purpose. Ranks: A1 B2 C3 D4 E5 F6.
    const call1 = store.logRerank({
      query: 'q',
      modelId: 'm',
      candidates: [candidate(0, 'C', 0.7), candidate(1, 'A', 0.9), candidate(2, 'D', 0.6), candidate(3, 'B', 0.8), candidate(4, 'F', 0.1), candidate(5, 'E', 0.3)],
    });
    store.labelRerank(call1, [2], [3], {}); // D relevant (rank 4), B irrelevant (rank 2)
    // Same query again: A is above the relevant H but already exported; G is new.
    const call2 = store.logRerank({ query: 'q', modelId: 'm', candidates: [candidate(0, 'A', 0.9), candidate(1, 'G', 0.5), candidate(2, 'H', 0.4)] });
    store.labelRerank(call2, [2], [], {});
    // Only irrelevant labels: nothing to mine.
    const call3 = store.logRerank({ query: 'r', modelId: 'm', candidates: [candidate(0, 'X', 0.9), candidate(1, 'Y', 0.1)] });
    store.labelRerank(call3, [], [1], {});
    // Logged but never labeled: nothing to mine.
    store.logRerank({ query: 's', modelId: 'm', candidates: [candidate(0, 'Z', 0.9)] });

    const labeled = [
      { sentence_0: 'q', sentence_1: 'D', label: 1 },
      { sentence_0: 'q', sentence_1: 'B', label: 0 },
      { sentence_0: 'q', sentence_1: 'H', label: 1 },
      { sentence_0: 'r', sentence_1: 'Y', label: 0 },
    ];
    const mined = (...texts: string[]) => texts.map((t) => ({ sentence_0: 'q', sentence_1: t, label: 0 }));
    assert.deepEqual(store.exportRows({ aggregate: 'latest' }), labeled);
    assert.deepEqual(store.exportRows({ aggregate: 'latest', mineNegatives: 0 }), labeled);
    assert.deepEqual(store.exportRows({ aggregate: 'latest', mineNegatives: 1 }), [...labeled, ...mined('A', 'G')]);
    assert.deepEqual(store.exportRows({ aggregate: 'latest', mineNegatives: 5 }), [...labeled, ...mined('A', 'C', 'G')]);

    // A pair labeled elsewhere is exported once, with its label, not mined as a negative.
    store.record([pair('q', 'C', 0.5)]);
    assert.deepEqual(store.exportRows({ aggregate: 'mean', mineNegatives: 5 }), [...labeled, { sentence_0: 'q', sentence_1: 'C', label: 0.5 }, ...mined('A', 'G')]);
    store.close();
  });

  test('CSV quoting follows RFC 4180', async () => {
    assert.equal(csvField('plain text'), 'plain text');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('"'), '""""');
    assert.equal(csvField('line\nbreak'), '"line\nbreak"');
    assert.equal(csvField('carriage\rreturn'), '"carriage\rreturn"');
    assert.equal(csvField('ls\u2028'), '"ls\u2028"');
    assert.equal(csvField(''), '');
    const path = join(tempDir(), 'q.csv');
    const rows: TrainingRow[] = [
      { sentence_0: 'q, "x"', sentence_1: 'two\r\nlines', label: 1 },
      { sentence_0: 'plain', sentence_1: 'text', label: 0.125 },
    ];
    await writeTo(path, (s) => writeCsv(rows, s));
    assert.equal(readFileSync(path, 'utf8'), 'sentence_0,sentence_1,label\r\n"q, ""x""","two\r\nlines",1\r\nplain,text,0.125\r\n');
  });
});

describe('stats', () => {
  test('counts events by label, source, day and model, calls and training pairs', () => {
    const time = clock('2025-03-01T23:30:00.000Z');
    const store = FeedbackStore.open(tempDb(), time);
    assert.deepEqual(store.stats(), { events: 0, byLabel: { zero: 0, one: 0, other: 0 }, bySource: {}, byDay: {}, byModel: {}, rerankCalls: 0, trainingPairs: { total: 0, positive: 0, negative: 0 } });
    store.record([pair('q', 'a', 1, { source: 'agent', modelId: 'm1' }), pair('q', 'b', 0, { source: 'agent', modelId: 'm1' }), pair('q', 'c', 0.5)]);
    time.advanceDays(1);
    const id = store.logRerank({ query: 'r', modelId: 'm2', candidates: [{ index: 0, text: 'x', score: 0.3, logit: -1 }] });
    store.logRerank({ query: 's', modelId: 'm2', candidates: [] });
    store.labelRerank(id, [0], [], { source: 'tool' });
    store.record([pair('q', 'a', 0, { source: 'agent' }), pair('q', 'd', 0.2, { source: 'agent', modelId: 'm1' })]);
    assert.deepEqual(store.stats(), {
      events: 6,
      byLabel: { zero: 2, one: 2, other: 2 },
      bySource: { '(none)': 1, agent: 4, tool: 1 },
      byDay: { '2025-03-01': 3, '2025-03-02': 3 },
      byModel: { '(none)': 2, m1: 3, m2: 1 },
      rerankCalls: 2,
      // Latest labels: a 0, b 0, c 0.5, x 1, d 0.2.
      trainingPairs: { total: 5, positive: 2, negative: 3 },
    });
    assert.equal(store.stats().trainingPairs.total, store.exportRows({ aggregate: 'latest' }).length);
    store.close();
  });
});

describe('concurrency', () => {
  test('two processes opening a fresh file and writing 200 events each both succeed', async () => {
    const path = join(tempDir(), 'shared.db');
    const storeUrl = pathToFileURL(resolve('src/feedback/feedback-store.ts')).href;
    const script = `
      import { FeedbackStore } from ${JSON.stringify(storeUrl)};
      const [path, name] = process.argv.slice(1);
      const store = FeedbackStore.open(path);
      for (let i = 0; i < 200; i++) store.record([{ query: name, document: 'doc ' + i, label: i % 2, source: name }]);
      store.close();
    `;
    const child = (name: string) =>
      new Promise<{ code: number | null; stderr: string }>((done) => {
        const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', path, name], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        proc.stderr.on('data', (chunk) => (stderr += chunk));
        proc.on('close', (code) => done({ code, stderr }));
      });
    const results = await Promise.all([child('one'), child('two')]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const store = FeedbackStore.open(path);
    const stats = store.stats();
    store.close();
    assert.equal(stats.events, 400);
    assert.deepEqual(stats.bySource, { one: 200, two: 200 });
    assert.equal(rawQuery<{ user_version: number }>(path, 'PRAGMA user_version')[0].user_version, SCHEMA_VERSION);
  });
});

async function writeTo(path: string, write: (stream: NodeJS.WritableStream) => Promise<void>): Promise<void> {
  const stream = createWriteStream(path);
  await write(stream);
  stream.end();
  await finished(stream);
  assert.ok(existsSync(path));
}

/** A strict RFC 4180 reader, independent of the writer under test. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let i = 0;
  while (i < text.length) {
    const record: string[] = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          const quote = text.indexOf('"', i);
          assert.ok(quote >= 0, 'unterminated quoted field');
          field += text.slice(i, quote);
          i = quote + 1;
          if (text[i] !== '"') break;
          field += '"';
          i++;
        }
      } else {
        const end = text.slice(i).search(/[,\r]/);
        field = end < 0 ? text.slice(i) : text.slice(i, i + end);
        assert.ok(!/["\n]/.test(field), `bare quote or LF in unquoted field ${JSON.stringify(field)}`);
        i += field.length;
      }
      record.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      assert.equal(text.slice(i, i + 2), '\r\n', 'records end with CRLF');
      i += 2;
      break;
    }
    records.push(record);
  }
  return records;
}
