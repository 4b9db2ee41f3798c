/**
 * The feedback database is private and bounded: file modes, the rerank log's byte cap, purge,
 * and errors that name the file and the fix. Real SQLite files in temp directories.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { FeedbackError, FeedbackStore, rerankCallBytes, type RerankCandidate } from '../src/feedback/feedback-store.js';
import { FeedbackService } from '../src/feedback/feedback-service.js';
import { REPO_ROOT } from './helpers/fixtures.js';
import { clock, tempDirs } from './helpers/feedback.js';

const tempDir = tempDirs('rerank-privacy-');

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);

const candidatesOf = (texts: string[]): RerankCandidate[] => texts.map((text, index) => ({ index, text, score: 1 - index / 100, logit: 0 }));

describe('file modes', () => {
  test('a created directory is 0700, the database, -wal and -shm files 0600, whatever the umask', () => {
    const previous = process.umask(0);
    try {
      const dir = join(tempDir(), 'data', 'rerank-mcp');
      const path = join(dir, 'feedback.db');
      let store = FeedbackStore.open(path);
      store.record([{ query: 'q', document: 'd', label: 1 }]);
      assert.equal(mode(dir), '700');
      assert.equal(mode(join(dir, '..')), '700', 'every directory created on the way');
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.ok(existsSync(file), file);
        assert.equal(mode(file), '600', file);
      }
      store.close();
      // The last connection removes -wal and -shm; the next one creates them again, still private.
      assert.ok(!existsSync(`${path}-wal`));
      store = FeedbackStore.open(path);
      store.logRerank({ query: 'q', candidates: candidatesOf(['a']), modelId: 'm' });
      for (const file of [path, `${path}-wal`, `${path}-shm`]) assert.equal(mode(file), '600', file);
      store.close();
    } finally {
      process.umask(previous);
    }
  });

  test('a database an older version left readable by others is made private on open', () => {
    const dir = tempDir();
    const path = join(dir, 'feedback.db');
    const store = FeedbackStore.open(path);
    store.record([{ query: 'q', document: 'd', label: 1 }]);
    store.close();
    for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o644);
    const reopened = FeedbackStore.open(path);
    reopened.record([{ query: 'q2', document: 'd2', label: 0 }]);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) assert.equal(mode(file), '600', file);
    reopened.close();
  });

  test("an existing directory keeps its mode: it is the user's", () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const store = FeedbackStore.open(join(dir, 'feedback.db'));
    store.close();
    assert.equal(mode(dir), '755');
    assert.equal(mode(join(dir, 'feedback.db')), '600');
  });
});

describe('rerank log byte cap', () => {
  test('evicts the oldest calls first until the text fits, and truncates the WAL after a large eviction', () => {
    const path = join(tempDir(), 'feedback.db');
    const store = FeedbackStore.open(path);
    const mb = 'x'.repeat(1024 * 1024);
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) ids.push(store.logRerank({ query: `q${i}`, candidates: candidatesOf([`${i}${mb}`]), modelId: 'm' }));
    const total = store.rerankLogBytes();
    // texts: a 1 MiB run plus the index (1 or 2 digits); queries q0..q23 (2 or 3 bytes)
    assert.equal(total, 24 * 1024 * 1024 + (10 * 1 + 14 * 2) + (10 * 2 + 14 * 3));
    // journal_size_limit: 24 MiB written, yet the WAL stays within its limit plus one call.
    assert.ok(statSync(`${path}-wal`).size < 17.5 * 1024 * 1024, `WAL of ${statSync(`${path}-wal`).size} bytes`);

    const eviction = store.evictRerankLogBytes(4 * 1024 * 1024);
    assert.equal(eviction.calls, 21);
    assert.ok(statSync(`${path}-wal`).size < 64 * 1024, `WAL of ${statSync(`${path}-wal`).size} bytes after the eviction`);
    assert.ok(eviction.remaining <= 4 * 1024 * 1024);
    assert.equal(store.rerankLogBytes(), eviction.remaining);
    const left = (new Database(path, { readonly: true }).prepare('SELECT query FROM rerank_calls ORDER BY id').all() as { query: string }[]).map((r) => r.query);
    assert.deepEqual(left, ['q21', 'q22', 'q23']);
    assert.throws(() => store.labelRerank(ids[0], [0], []), /unknown rerank_id/);
    assert.equal(store.labelRerank(ids[23], [0], []).count, 1);
    // Under the cap nothing goes.
    assert.deepEqual(store.evictRerankLogBytes(4 * 1024 * 1024), { calls: 0, bytes: 0, remaining: eviction.remaining });
    store.close();
  });

  test('the service keeps the log under --rerank-log-max-mb and does not log a call larger than half the cap', async () => {
    const path = join(tempDir(), 'feedback.db');
    const cap = 100_000;
    const service = new FeedbackService(path, { maxCalls: 10_000, maxDays: 30, maxBytes: cap });
    const call = (i: number, size: number) => ({ query: `q${i}`, candidates: candidatesOf([`${i}`.padEnd(size, 'y')]), modelId: 'm' });
    const ids: (string | undefined)[] = [];
    for (let i = 0; i < 12; i++) ids.push(await service.logRerank(call(i, 20_000)));
    assert.ok(ids.every((id) => typeof id === 'string'));
    const store = await service.open();
    const bytes = await store.rerankLogBytes();
    assert.ok(bytes <= cap, `${bytes} bytes`);
    await assert.rejects(store.labelRerank(ids[0]!, [0], []), /unknown rerank_id/);
    assert.equal((await store.labelRerank(ids[11]!, [0], [])).count, 1);
    assert.equal(await service.logRerank(call(99, cap / 2 + 1)), undefined);
    assert.equal(typeof (await service.logRerank(call(98, cap / 2 - 10))), 'string');
    assert.equal(rerankCallBytes(call(1, 10)), 12);
    await service.close();
  });

  test('a cap of 0 turns the log off', async () => {
    const service = new FeedbackService(join(tempDir(), 'feedback.db'), { maxCalls: 10, maxDays: 30, maxBytes: 0 });
    assert.equal(service.rerankLogEnabled, false);
    assert.equal(await service.logRerank({ query: 'q', candidates: candidatesOf(['a']), modelId: 'm' }), undefined);
  });
});

describe('purge', () => {
  test('removes rerank-log calls and/or feedback before a date, and overwrites the deleted text', () => {
    const path = join(tempDir(), 'feedback.db');
    const time = clock();
    const store = FeedbackStore.open(path, time);
    for (let day = 0; day < 4; day++) {
      const secret = `SECRET-DAY-${day}-` + 'z'.repeat(5000);
      store.logRerank({ query: `query-${day}`, candidates: candidatesOf([secret, `short-${day}`]), modelId: 'm' });
      store.record([{ query: `label-query-${day}`, document: `LABELED-DAY-${day}`, label: 1 }]);
      time.advanceDays(1);
    }
    const cutoff = new Date('2025-03-03T00:00:00Z');
    assert.deepEqual(store.purge(cutoff, { log: true, feedback: false }), { calls: 2, events: 0 });
    assert.equal(store.stats().events, 4);
    assert.deepEqual(store.purge(cutoff, { log: false, feedback: true }), { calls: 0, events: 2 });
    assert.equal(store.stats().events, 2);
    assert.deepEqual(store.purge(cutoff, { log: true, feedback: true }), { calls: 0, events: 0 });
    // The deleted text is gone from the file and its WAL, not only from the tables.
    const onDisk = [path, `${path}-wal`].filter(existsSync).map((f) => readFileSync(f).toString('latin1')).join('');
    for (const gone of ['SECRET-DAY-0', 'SECRET-DAY-1', 'LABELED-DAY-0', 'LABELED-DAY-1', 'label-query-1']) assert.ok(!onDisk.includes(gone), `${gone} is still on disk`);
    for (const kept of ['SECRET-DAY-3', 'LABELED-DAY-3']) assert.ok(onDisk.includes(kept), kept);
    store.close();
  });
});

describe('database errors name the file and the fix', () => {
  test('a file that is not a database', () => {
    const path = join(tempDir(), 'notes.db');
    writeFileSync(path, 'these are my notes, not a database\n'.repeat(50));
    assert.throws(
      () => FeedbackStore.open(path),
      (err: Error) => err instanceof FeedbackError && err.message.includes(path) && /is not a SQLite database .*move it away.*--db/.test(err.message),
    );
  });

  test('a directory where the file should be', () => {
    const path = join(tempDir(), 'feedback.db');
    mkdirSync(path);
    assert.throws(
      () => FeedbackStore.open(path),
      (err: Error) => err instanceof FeedbackError && err.message.includes(path) && /is a directory, not a feedback database.*--db/.test(err.message),
    );
  });

  test('a database this user may not write', () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const path = join(dir, 'feedback.db');
    FeedbackStore.open(path).close();
    chmodSync(path, 0o644);
    // Root writes anything, so the attempt runs as nobody there; other users lose write permission.
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) chmodSync(path, 0o444);
    const script = `import { FeedbackStore } from ${JSON.stringify(join(REPO_ROOT, 'dist', 'feedback', 'feedback-store.js'))};
      try { const s = FeedbackStore.open(process.argv[1]); s.record([{ query: 'q', document: 'd', label: 1 }]); console.log('written'); }
      catch (err) { console.log(err.message); }`;
    const command = asRoot ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script, path]] : [process.execPath, ['--input-type=module', '-e', script, path]];
    const res = spawnSync(command[0] as string, command[1] as string[], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const message = res.stdout.trim();
    assert.ok(message.includes(path), message);
    assert.match(message, /cannot (be written|open).*write permission|this user can read and write/);
    assert.match(message, /--db/);
  });
});

describe('CSV export', () => {
  test('cells a spreadsheet would run as formulas are neutralised with a leading quote', async () => {
    const { csvField } = await import('../src/feedback/export.js');
    assert.equal(csvField('=HYPERLINK("http://evil.test","x")'), `"'=HYPERLINK(""http://evil.test"",""x"")"`);
    assert.equal(csvField('+1+2'), "'+1+2");
    assert.equal(csvField('-2+3'), "'-2+3");
    assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvField('\tcmd'), "'\tcmd");
    assert.equal(csvField('\rcmd'), `"'\rcmd"`);
    assert.equal(csvField('a=b, c'), '"a=b, c"', 'only the first character matters');
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField("'=1"), "''=1", 'a quote already before a formula gets one more, so reading takes exactly one off');
    assert.equal(csvField("'quoted"), "'quoted");
  });

  test('python/finetune.py reads the neutralised CSV back to the exact texts', async () => {
    const { writeCsv } = await import('../src/feedback/export.js');
    const texts = ['=1+1', "'=1", "''@x", '-minus', '\tTab', "'plain quote", 'plain', 'a,"b"\nc'];
    const path = join(tempDir(), 'train.csv');
    const out = createWriteStream(path);
    await writeCsv(texts.map((t, i) => ({ sentence_0: t, sentence_1: `doc ${t}`, label: i % 2 })), out);
    await new Promise((resolve) => out.end(resolve));
    const script = 'import json, sys; sys.path.insert(0, "python"); from finetune import load_pairs; print(json.dumps(load_pairs(sys.argv[1])))';
    const read = JSON.parse(execFileSync(process.env.RERANK_PYTHON ?? 'python3', ['-c', script, path], { encoding: 'utf8', cwd: REPO_ROOT })) as [string, string, number][];
    assert.deepEqual(read.map((r) => r[0]), texts);
    assert.deepEqual(read.map((r) => r[1]), texts.map((t) => `doc ${t}`));
  });
});
