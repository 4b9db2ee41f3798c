/**
 * The PostgreSQL store as replicas use it, against a real PostgreSQL server: concurrent first
 * starts, the database going down and coming back under a running server, a refused login,
 * SIGKILL right after acknowledged writes, and the CLI commands reading it.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { PG_MIGRATIONS } from '../src/feedback/postgres-store.js';
import { openStore } from '../src/feedback/store.js';
import { TINY_CE } from './helpers/fixtures.js';
import { tempDirs } from './helpers/feedback.js';
import { connectStdio, type StdioConnection } from './helpers/mcp.js';
import { postgresSkip, startPostgres, type PostgresServer } from './helpers/postgres.js';
import { runCli } from './helpers/run-cli.js';
import { call } from './helpers/tool-checks.js';

const skip = postgresSkip();
const tempDir = tempDirs('rerank-pg-test-');
let server: PostgresServer;
let n = 0;
const freshDb = () => server.createDatabase(`feedback_${++n}`);

before(async () => {
  if (!skip) server = await startPostgres();
});
after(() => server?.destroy());

async function rows<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

// In process (--standalone): the SIGKILLs below must hit the process that writes, not a shim.
const serve = (url: string) => connectStdio(['--model', TINY_CE, '--rerank-log-max-calls', '0', '--standalone'], { RERANK_FEEDBACK_DB: url });
const label = (conn: StdioConnection, query: string) => call(conn.client, 'feedback', { items: [{ query, document: `doc of ${query}`, label: 1 }] });

test('a postgres:// --db is kept as a URL, and --print-config masks its password', async () => {
  const url = 'postgres://app:s3cret-pw@db.internal:5433/rerank';
  const r = await runCli(['--print-config', '--db', url]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes('s3cret-pw'), r.stdout);
  assert.match(r.stdout, /postgres:\/\/app:\*\*\*@db\.internal:5433\/rerank/);
});

describe('PostgreSQL store', { skip }, () => {
  test('three stores opening a fresh database at once migrate it exactly once', async () => {
    const url = await freshDb();
    const stores = await Promise.all([0, 1, 2].map(() => openStore(url)));
    try {
      const applied = await rows<{ version: number }>(url, 'SELECT version FROM rerank_feedback_migrations ORDER BY version');
      assert.deepEqual(applied.map((r) => r.version), PG_MIGRATIONS.map((_, i) => i + 1));
      await Promise.all(stores.map((s, i) => s.record([{ query: `q${i}`, document: 'd', label: 1 }])));
      assert.equal((await stores[0].stats()).events, 3);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test('database down: each feedback call fails with one line naming host and database, the server keeps serving, and reconnects once it is back', async () => {
    const url = await freshDb();
    const conn = await serve(url);
    try {
      assert.equal((await label(conn, 'before')).structuredContent?.stored, 1);
      server.stop();
      try {
        for (const query of ['while down 1', 'while down 2']) {
          const res = await label(conn, query);
          assert.equal(res.isError, true, JSON.stringify(res));
          const message = (res.content as { text: string }[])[0].text;
          assert.ok(!message.includes('\n'), message);
          assert.ok(message.includes(`127.0.0.1:${server.port}/feedback_${n}`), message);
          assert.ok(!message.includes('rerank-test-secret'), `password shown: ${message}`);
          assert.match(message, /cannot be reached/);
        }
        const scored = await call(conn.client, 'score_pair', { query: 'q', document: 'd' });
        assert.notEqual(scored.isError, true, 'reranking goes on without the database');
      } finally {
        server.start();
      }
      const back = await label(conn, 'after restart');
      assert.equal(back.structuredContent?.stored, 1, JSON.stringify(back));
    } finally {
      await conn.close();
    }
    assert.deepEqual((await rows<{ q: Buffer }>(url, 'SELECT query AS q FROM feedback_events ORDER BY id')).map((r) => r.q.toString()), ['before', 'after restart']);
  });

  test('a refused login is one line naming the server, with the password masked; the next call tries again', async () => {
    const url = await freshDb();
    const wrong = url.replace('rerank-test-secret', 'wrong-password');
    const conn = await serve(wrong);
    try {
      const res = await label(conn, 'q');
      assert.equal(res.isError, true);
      const message = (res.content as { text: string }[])[0].text;
      assert.match(message, /^feedback database: PostgreSQL 127\.0\.0\.1:\d+\/feedback_\d+ as postgres: login refused .*check the user and password/);
      assert.ok(!message.includes('wrong-password') && !message.includes('\n'), message);
      assert.equal((await label(conn, 'q')).isError, true, 'tried again, refused again');
    } finally {
      await conn.close();
    }
  });

  test('servers SIGKILLed right after acknowledging labels lose none of them', async () => {
    const url = await freshDb();
    const acknowledged = new Set<string>();
    const writer = async (proc: number) => {
      const conn = await serve(url);
      let i = 0;
      // The kill lands right after an acknowledgement: nothing after the commit may be needed.
      try {
        for (;;) {
          const query = `proc ${proc} write ${i++}`;
          const res = await label(conn, query);
          assert.equal(res.structuredContent?.stored, 1, JSON.stringify(res));
          acknowledged.add(query);
          if (i >= 5 + proc * 3) {
            process.kill(conn.pid!, 'SIGKILL');
            break;
          }
        }
      } finally {
        await conn.close().catch(() => undefined);
      }
    };
    await Promise.all([0, 1, 2].map(writer));
    const stored = new Set((await rows<{ q: Buffer }>(url, 'SELECT query AS q FROM feedback_events')).map((r) => r.q.toString()));
    assert.equal(acknowledged.size, 5 + 8 + 11);
    assert.deepEqual([...acknowledged].filter((q) => !stored.has(q)), []);
  });

  test('feedback stats, export and purge, and finetune, read a postgres:// --db', async () => {
    const url = await freshDb();
    const store = await openStore(url);
    await store.record([{ query: 'q', document: 'nul \u0000 kept', label: 1, source: 'cli-test' }, { query: 'q', document: 'other', label: 0 }]);
    await store.close();
    const stats = await runCli(['feedback', 'stats', '--db', url]);
    assert.equal(stats.code, 0, stats.stderr);
    const parsed = JSON.parse(stats.stdout);
    assert.equal(parsed.events, 2);
    assert.deepEqual(parsed.bySource, { 'cli-test': 1, '(none)': 1 });
    assert.ok(!stats.stdout.includes('rerank-test-secret') && parsed.database.includes('***'), parsed.database);
    const exported = await runCli(['feedback', 'export'], { env: { RERANK_FEEDBACK_DB: url } });
    assert.equal(exported.code, 0, exported.stderr);
    assert.deepEqual(exported.stdout.trim().split('\n').map((l) => JSON.parse(l)), [
      { sentence_0: 'q', sentence_1: 'nul \u0000 kept', label: 1 },
      { sentence_0: 'q', sentence_1: 'other', label: 0 },
    ]);
    if (process.env.RERANK_PYTHON) {
      // finetune checks its Python and base (a stand-in is enough) first, then reads the database.
      const dir = tempDir();
      mkdirSync(join(dir, 'base'));
      copyFileSync(join(TINY_CE, 'config.json'), join(dir, 'base', 'config.json'));
      writeFileSync(join(dir, 'base', 'model.safetensors'), '');
      const ft = await runCli(['finetune', '--db', url, '--base', join(dir, 'base'), '--out', join(dir, 'out'), '--python', process.env.RERANK_PYTHON]);
      assert.equal(ft.code, 2, ft.stderr);
      // it got as far as judging the labels read from PostgreSQL
      assert.match(ft.stderr, /^\[rerank-mcp\] error: nothing trained: [^\n]*queries[^\n]*\n$/);
    }
    const purged = await runCli(['feedback', 'purge', '--before', '2999-01-01', '--all', '--db', url]);
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(JSON.parse(purged.stdout).feedback_events_deleted, 2);
    const check = await runCli(['feedback', 'check', '--db', url]);
    assert.equal(check.code, 2);
    assert.match(check.stderr, /works on SQLite files; for PostgreSQL .*\*\*\*/);
  });
});
