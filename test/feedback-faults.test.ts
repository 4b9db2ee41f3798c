/**
 * The feedback database under faults, against real SQLite files: deleted, replaced or damaged
 * under a running server driven by the MCP SDK client, a --db that is a directory, an open that
 * failed once, and the duplicate check's cost with long labels.
 */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { FeedbackService } from '../src/feedback/feedback-service.js';
import { FeedbackStore } from '../src/feedback/feedback-store.js';
import { MIGRATIONS } from '../src/feedback/schema.js';
import { TINY_CE } from './helpers/fixtures.js';
import { tempDirs } from './helpers/feedback.js';
import { connectStdio, type StdioConnection } from './helpers/mcp.js';
import { runCli } from './helpers/run-cli.js';
import { call, errorText } from './helpers/tool-checks.js';

const tempDir = tempDirs('rerank-feedback-faults-');

function queriesAt(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    // A file whose tables were lost holds no labels: say so in the assertion, not as an exception.
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'feedback_events'").get()) return [];
    return (db.prepare('SELECT query FROM feedback_events ORDER BY id').all() as { query: string }[]).map((r) => r.query);
  } finally {
    db.close();
  }
}

async function label(conn: StdioConnection, query: string) {
  return call(conn.client, 'feedback', { query, document: `doc for ${query}`, label: 1 });
}

async function withServer(db: string, use: (conn: StdioConnection) => Promise<void>): Promise<void> {
  // In process: it reads the server's own log lines (the shared daemon logs to its file).
  const conn = await connectStdio(['--model', TINY_CE, '--rerank-log-max-calls', '0', '--standalone'], { RERANK_FEEDBACK_DB: db });
  try {
    await use(conn);
  } finally {
    await conn.close();
  }
}

const removeDb = (path: string) => ['', '-wal', '-shm'].forEach((s) => rmSync(path + s, { force: true }));

describe('the file under a running server', () => {
  test('deleted: the next label goes to a new file at the path, with a log line, never to the unlinked one', async () => {
    const db = join(tempDir(), 'feedback.db');
    await withServer(db, async (conn) => {
      assert.equal((await label(conn, 'before')).structuredContent?.stored, 1);
      removeDb(db);
      const after = await label(conn, 'after delete');
      assert.notEqual(after.isError, true, JSON.stringify(after));
      assert.equal(after.structuredContent?.stored, 1);
      assert.match(conn.stderr(), /feedback\.db was deleted while open; reopening it as a new, empty database/);
      assert.deepEqual(queriesAt(db), ['after delete']);
    });
    // and after the server is gone, the acknowledged label is still there
    assert.deepEqual(queriesAt(db), ['after delete']);
  });

  test('replaced by another database file: labels land in the file now at the path', async () => {
    const dir = tempDir();
    const db = join(dir, 'feedback.db');
    const other = join(dir, 'other.db');
    FeedbackStore.open(other).close();
    await withServer(db, async (conn) => {
      await label(conn, 'first');
      removeDb(db);
      copyFileSync(other, db);
      const res = await label(conn, 'into the replacement');
      assert.equal(res.structuredContent?.stored, 1, JSON.stringify(res));
      assert.match(conn.stderr(), /was replaced by another file while open; reopening it( \[request [0-9a-f-]+\])?\n/);
    });
    assert.deepEqual(queriesAt(db), ['into the replacement']);
  });

  test('replaced by a directory: the call fails with one line naming the file; the server stays up and recovers once the path is fixed', async () => {
    const db = join(tempDir(), 'feedback.db');
    await withServer(db, async (conn) => {
      await label(conn, 'first');
      removeDb(db);
      mkdirSync(db, { mode: 0o755 });
      const res = await label(conn, 'lost?');
      assert.equal(res.isError, true, JSON.stringify(res));
      const message = errorText(res);
      assert.ok(!message.includes('\n'), message);
      assert.ok(message.includes(`${db} is a directory`), message);
      assert.equal(statSync(db).mode & 0o777, 0o755, 'the directory was not chmod-ed');
      // the failed open is not remembered: fixing the path is enough
      rmSync(db, { recursive: true });
      const again = await label(conn, 'after the fix');
      assert.equal(again.structuredContent?.stored, 1, JSON.stringify(again));
      assert.equal((await call(conn.client, 'score_pair', { query: 'q', document: 'd' })).isError, undefined);
    });
    assert.deepEqual(queriesAt(db), ['after the fix']);
  });

  test('8 KiB corrupted in the middle: check, export, stats, purge and finetune name the file and the way out; recover salvages and keeps the original', async () => {
    const dir = tempDir();
    const db = join(dir, 'feedback.db');
    const seed = FeedbackStore.open(db);
    for (let b = 0; b < 30; b++) seed.record(Array.from({ length: 40 }, (_, i) => ({ query: `query ${b}`, document: `document ${b}.${i} `.repeat(15), label: i % 2 })));
    seed.close();
    const size = statSync(db).size;
    await withServer(db, async (conn) => {
      await label(conn, 'while sound');
      const fd = openSync(db, 'r+');
      writeSync(fd, Buffer.alloc(8192, 0x5a), 0, 8192, Math.floor(size / 2 / 4096) * 4096);
      closeSync(fd);
      const cliEnv = { env: { RERANK_FEEDBACK_DB: db } };
      const commands = [['feedback', 'stats'], ['feedback', 'export'], ['feedback', 'purge', '--before', '2100-01-01', '--all']];
      // finetune checks its Python and its base (a stand-in is enough) before it reads the database
      if (process.env.RERANK_PYTHON) {
        const base = join(dir, 'base');
        mkdirSync(base);
        copyFileSync(join(TINY_CE, 'config.json'), join(base, 'config.json'));
        writeFileSync(join(base, 'model.safetensors'), '');
        commands.push(['finetune', '--db', db, '--base', base, '--out', join(dir, 'out'), '--python', process.env.RERANK_PYTHON]);
      }
      for (const args of commands) {
        const r = await runCli(args, cliEnv);
        assert.notEqual(r.code, 0, `${args.join(' ')} succeeded on a corrupt file: ${r.stdout}`);
        assert.equal(r.stdout, '', `${args.join(' ')} printed a result: ${r.stdout}`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.ok(lines[0].includes(`${db} is corrupt`) && lines[0].includes('rerank-mcp feedback check') && lines[0].includes('rerank-mcp feedback recover'), `${args.join(' ')}: ${lines[0]}`);
      }
      const check = await runCli(['feedback', 'check'], cliEnv);
      assert.equal(check.code, 1, check.stderr);
      assert.equal(JSON.parse(check.stdout).ok, false);
    });
    // a server started on the damaged file says so on the first feedback call, and keeps reranking
    await withServer(db, async (conn) => {
      const res = await label(conn, 'into a damaged file');
      assert.equal(res.isError, true, JSON.stringify(res));
      const message = (res.content as { text: string }[])[0].text;
      assert.ok(message.includes(`${db} is corrupt`) && message.includes('rerank-mcp feedback recover') && !message.includes('\n'), message);
      assert.notEqual((await call(conn.client, 'score_pair', { query: 'q', document: 'd' })).isError, true);
    });
    const damaged = readFileSync(db);
    const recover = await runCli(['feedback', 'recover', '--db', db]);
    assert.equal(recover.code, 0, recover.stderr);
    const report = JSON.parse(recover.stdout) as { backup: string; rows: Record<string, number> };
    assert.ok(report.rows.feedback_events > 0 && report.rows.feedback_events < 1201, JSON.stringify(report));
    assert.deepEqual(readFileSync(report.backup), damaged, 'the damaged file is kept byte for byte');
    assert.equal(statSync(db).mode & 0o077, 0, 'the recovered file is private');
    assert.equal((await runCli(['feedback', 'check', '--db', db])).code, 0);
    const stats = await runCli(['feedback', 'stats', '--db', db]);
    assert.equal(stats.code, 0, stats.stderr);
    assert.equal(JSON.parse(stats.stdout).events, report.rows.feedback_events);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('recovering')), []);
  });
});

/** Sends `n` labels one by one; the queries of those acknowledged, and the error lines of those refused. */
async function labels(conn: StdioConnection, prefix: string, n: number): Promise<{ acknowledged: string[]; refused: string[] }> {
  const acknowledged: string[] = [];
  const refused: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await label(conn, `${prefix} ${i}`);
    if (res.structuredContent?.stored === 1) acknowledged.push(`${prefix} ${i}`);
    else refused.push(errorText(res));
  }
  return { acknowledged, refused };
}

/** Signals the server and waits until the process is gone. */
async function killServer(conn: StdioConnection, signal: NodeJS.Signals): Promise<void> {
  process.kill(conn.pid!, signal);
  for (;;) {
    try {
      process.kill(conn.pid!, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await conn.close().catch(() => undefined);
}

const serve = (db: string) => connectStdio(['--model', TINY_CE, '--rerank-log-max-calls', '0', '--standalone'], { RERANK_FEEDBACK_DB: db });

describe('the WAL and the main file under a running server (issue 21, item 2)', () => {
  test('-wal deleted, then 20 labels and a SIGKILL: what was acknowledged is in the file', async () => {
    const db = join(tempDir(), 'feedback.db');
    const conn = await serve(db);
    const before = await labels(conn, 'before', 3);
    rmSync(`${db}-wal`);
    const after = await labels(conn, 'after', 20);
    const stderr = conn.stderr();
    await killServer(conn, 'SIGKILL');
    assert.match(stderr, /feedback\.db-wal was deleted while open; what it held was moved into \S+feedback\.db and a new WAL started/);
    // Before: all 20 acknowledged, none in the file (they went to the unlinked WAL).
    assert.ok(after.acknowledged.length >= 15, `only ${after.acknowledged.length} of 20 acknowledged: ${after.refused[0]}`);
    const stored = new Set(queriesAt(db));
    const lost = [...before.acknowledged, ...after.acknowledged].filter((q) => !stored.has(q));
    assert.deepEqual(lost, [], `${lost.length} acknowledged labels missing`);
    const check = await runCli(['feedback', 'check', '--db', db]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });

  test('-wal truncated to 0 bytes, then labels and a SIGTERM: the cut is reported in one line; every label acknowledged is in a file that passes feedback check', async () => {
    const db = join(tempDir(), 'feedback.db');
    const conn = await serve(db);
    await labels(conn, 'before', 3);
    truncateSync(`${db}-wal`, 0);
    const after = await labels(conn, 'after', 10);
    await killServer(conn, 'SIGTERM');
    const check = await runCli(['feedback', 'check', '--db', db]);
    // Before: all 10 acknowledged, then the file was damaged and none of them in it.
    assert.equal(check.code, 0, `feedback check: ${check.stdout}${check.stderr}`);
    const stored = new Set(queriesAt(db));
    const lost = after.acknowledged.filter((q) => !stored.has(q));
    assert.deepEqual(lost, [], `${lost.length} of ${after.acknowledged.length} acknowledged labels missing`);
    // The first label after the cut is refused: the labels the WAL held are gone, and the user must hear it.
    assert.ok(after.refused.length >= 1, 'the cut WAL was never reported');
    const message = after.refused[0];
    assert.ok(!message.includes('\n') && message.includes(`${db}-wal was truncated`) && message.includes('rerank-mcp feedback check') && message.includes('rerank-mcp feedback recover'), message);
  });

  test('a VACUUM by another process shrinks the file without being taken for a cut', () => {
    const db = join(tempDir(), 'feedback.db');
    const store = FeedbackStore.open(db);
    store.record(Array.from({ length: 400 }, (_, i) => ({ query: `q ${i}`, document: 'x'.repeat(2000), label: 1 })));
    const other = new Database(db);
    other.exec('DELETE FROM feedback_events');
    other.pragma('wal_checkpoint(TRUNCATE)');
    const before = statSync(db).size;
    other.exec('VACUUM');
    other.pragma('wal_checkpoint(TRUNCATE)');
    other.close();
    assert.ok(statSync(db).size < before / 4, `${statSync(db).size} bytes after VACUUM, ${before} before`);
    assert.equal(store.record([{ query: 'after the vacuum', document: 'd', label: 1 }]).count, 1);
    store.close();
    assert.deepEqual(queriesAt(db), ['after the vacuum']);
  });

  test('main file truncated to 0 bytes: labels are refused with one line naming the file and feedback check|recover; reranking goes on', async () => {
    const db = join(tempDir(), 'feedback.db');
    await withServer(db, async (conn) => {
      await labels(conn, 'before', 3);
      truncateSync(db, 0);
      const after = await labels(conn, 'after', 3);
      // Before: all 3 acknowledged into a file with no database left in it.
      assert.deepEqual(after.acknowledged, []);
      const message = after.refused[0];
      assert.ok(!message.includes('\n') && message.includes(`${db} was truncated`) && message.includes('rerank-mcp feedback check') && message.includes('rerank-mcp feedback recover'), message);
      assert.notEqual((await call(conn.client, 'score_pair', { query: 'q', document: 'd' })).isError, true);
    });
  });
});

describe('opening', () => {
  test('a --db that is a directory is refused with one line and left as it is', async () => {
    const dir = join(tempDir(), 'data');
    mkdirSync(dir, { mode: 0o755 });
    const r = await runCli(['feedback', 'purge', '--before', '2000-01-01', '--db', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^\[rerank-mcp\] error: \S+data is a directory, not a feedback database: pass --db[^\n]*\n$/);
    assert.equal(statSync(dir).mode & 0o777, 0o755);
  });

  test('an open that failed is tried again on the next call', async () => {
    const dir = tempDir();
    const blocker = join(dir, 'sub');
    writeFileSync(blocker, 'a file where the directory should be');
    const service = new FeedbackService(join(blocker, 'feedback.db'), { maxCalls: 0, maxDays: 0 });
    await assert.rejects(service.record([{ query: 'q', document: 'd', label: 1 }]), /feedback database/);
    rmSync(blocker);
    mkdirSync(blocker);
    assert.equal((await service.record([{ query: 'q', document: 'd', label: 1 }])).count, 1);
    await service.close();
  });
});

describe('duplicate check', () => {
  test('a database of schema 1 gets the pair hash of its rows, and repeats are still counted', () => {
    const path = join(tempDir(), 'v1.db');
    const raw = new Database(path);
    raw.exec(MIGRATIONS[0]);
    raw.pragma('user_version = 1');
    raw.prepare("INSERT INTO feedback_events (created_at, query, document, label) VALUES ('2025-01-01T00:00:00.000Z', 'q', 'old doc', 1)").run();
    raw.close();
    const store = FeedbackStore.open(path);
    assert.deepEqual(store.record([{ query: 'q', document: 'old doc', label: 0 }, { query: 'q', document: 'new doc', label: 1 }]).repeats, 1);
    store.close();
    const check = new Database(path, { readonly: true });
    assert.equal((check.prepare('SELECT COUNT(*) AS n FROM feedback_events WHERE pair_hash IS NULL').get() as { n: number }).n, 0);
    const plan = check.prepare("EXPLAIN QUERY PLAN SELECT 1 FROM feedback_events WHERE pair_hash = x'00' AND query = 'q' AND document = 'd'").all() as { detail: string }[];
    check.close();
    assert.ok(plan.some((p) => /feedback_events_pair/.test(p.detail)), JSON.stringify(plan));
  });

  test('a write does not read the stored texts of its query: 1500 labels of 30k characters cost no more than 10', () => {
    const path = join(tempDir(), 'long.db');
    const store = FeedbackStore.open(path);
    const long = (i: number) => `${i} `.padEnd(30_000, 'lorem ipsum ');
    const timeWrite = () => {
      const t = process.hrtime.bigint();
      for (let k = 0; k < 5; k++) store.record([{ query: 'the query', document: `new ${k} ${Math.random()}`, label: 1 }]);
      return Number(process.hrtime.bigint() - t) / 5e6;
    };
    store.record(Array.from({ length: 10 }, (_, i) => ({ query: 'the query', document: long(i), label: 1 })));
    const small = Math.min(timeWrite(), timeWrite());
    store.record(Array.from({ length: 1490 }, (_, i) => ({ query: 'the query', document: long(i + 10), label: 1 })));
    const large = Math.min(timeWrite(), timeWrite());
    store.close();
    // Scanning 45 MB of text per write (the old check) is ~100x; a lookup by hash stays flat.
    assert.ok(large < small * 8 + 5, `a write took ${large.toFixed(2)} ms with 1500 long labels of the query against ${small.toFixed(2)} ms with 10`);
  });
});
