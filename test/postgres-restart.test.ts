/**
 * PostgreSQL restarted and stopped under a running server (`--http`, one process) with four
 * clients writing feedback all along: fast restart (sessions end with 57P01), immediate restart
 * (a crash, WAL recovery), and a stop long enough to see the error line and to rerank without the
 * database. After each: the process is alive, writes are acknowledged again within seconds without
 * a restart of ours, and every label ever acknowledged is in the database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import pg from 'pg';
import { openStore } from '../src/feedback/store.js';
import { TINY_CE } from './helpers/fixtures.js';
import { connectHttp, startHttpServer, type HttpServerProcess } from './helpers/mcp.js';
import { postgresSkip, startPostgres, type PostgresServer } from './helpers/postgres.js';
import { call } from './helpers/tool-checks.js';

const skip = postgresSkip();
const WRITERS = 4;
const RESUME_MS = 10_000;
let pgServer: PostgresServer;

before(async () => {
  if (!skip) pgServer = await startPostgres();
});
after(() => pgServer?.destroy());

async function sql<T>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

const storedQueries = async (url: string) => new Set((await sql<{ q: Buffer }>(url, 'SELECT query AS q FROM feedback_events')).map((r) => r.q.toString()));

describe('PostgreSQL restarts under write load', { skip }, () => {
  test('a label write whose COMMIT answer is lost is acknowledged because the server says it committed', { timeout: 60_000 }, async () => {
    const url = await pgServer.createDatabase('lost_commit');
    const admin = pgServer.url('postgres');
    const store = await openStore(url);
    // A synchronous standby that never comes: COMMIT is durable locally, then waits for it; ending
    // that session now loses the answer to a COMMIT that did happen, the case a guess gets wrong.
    await sql(admin, "ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
    await sql(admin, 'SELECT pg_reload_conf()');
    try {
      const write = store.record([{ query: 'committed, answer lost', document: 'd', label: 1 }]);
      const settled = write.then(
        (r) => r,
        (e: Error) => e,
      );
      let waiting: { pid: number }[] = [];
      for (let i = 0; i < 200 && waiting.length === 0; i++) {
        await sleep(50);
        waiting = await sql<{ pid: number }>(admin, "SELECT pid FROM pg_stat_activity WHERE datname = 'lost_commit' AND wait_event = 'SyncRep'");
      }
      assert.equal(waiting.length, 1, 'the COMMIT waits for the standby');
      // Ended before the setting is reset: a reload without the standby would release the wait.
      await sql(admin, 'SELECT pg_terminate_backend($1)', [waiting[0].pid]);
      await sql(admin, 'ALTER SYSTEM RESET synchronous_standby_names');
      await sql(admin, 'SELECT pg_reload_conf()');
      const result = await settled;
      assert.ok(!(result instanceof Error), `committed, so acknowledged: ${(result as Error).message}`);
      assert.equal(result.count, 1);
      assert.deepEqual([...(await storedQueries(url))], ['committed, answer lost']);
      assert.equal((await store.record([{ query: 'next', document: 'd', label: 0 }])).count, 1, 'the store goes on');
    } finally {
      await sql(admin, 'ALTER SYSTEM RESET synchronous_standby_names');
      await sql(admin, 'SELECT pg_reload_conf()');
      await store.close();
    }
  });

  test('a COMMIT cut by a crash is not acknowledged when its xid is handed out again after recovery', { timeout: 90_000 }, async () => {
    const url = await pgServer.createDatabase('xid_reuse');
    const store = await openStore(url);
    try {
      assert.equal((await store.record([{ query: 'before', document: 'd', label: 0 }])).count, 1);
      // A deferred trigger runs inside COMMIT, before its commit record is written: the crash lands
      // there, and the inserts' WAL was never flushed, so recovery does not know the xid was used.
      await sql(url, `CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON feedback_events DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`);
      const settled = store.record([{ query: 'cut by the crash', document: 'd', label: 1 }]).then((r) => r, (e: Error) => e);
      let xid: number | undefined;
      for (let i = 0; i < 100 && xid === undefined; i++) {
        await sleep(50);
        const rows = await sql<{ x: string | null }>(url, "SELECT backend_xid::text AS x FROM pg_stat_activity WHERE query = 'COMMIT' AND state = 'active'");
        if (rows[0]?.x) xid = Number(rows[0].x);
      }
      assert.ok(xid !== undefined, 'the label COMMIT is running its deferred trigger');
      await pgServer.restart('immediate');
      await sql(url, 'DROP TRIGGER slow_commit ON feedback_events');
      // Other transactions commit after recovery (the DROP above is the first): the first of them is given
      // our xid again, since it was never durable, and txid_status then says 'committed' for it.
      for (let i = 0; i < 20; i++) await sql(url, 'SELECT txid_current()');
      const [{ status }] = await sql<{ status: string | null }>(url, 'SELECT txid_status($1::bigint) AS status', [xid]);
      const result = await settled;
      const stored = await storedQueries(url);
      assert.equal(stored.has('cut by the crash'), false, 'the crash rolled the write back');
      assert.ok(result instanceof Error, `the write was acknowledged (${JSON.stringify(result)}) but is not stored; txid_status of its xid ${xid}: ${status}`);
      assert.equal((await store.record([{ query: 'after', document: 'd', label: 0 }])).count, 1, 'the store goes on');
    } finally {
      await store.close();
    }
  });

  test('restart fast, restart immediate, stop then start: the server lives, writes resume, nothing acknowledged is lost', { timeout: 120_000 }, async (t) => {
    const dbName = 'restarts';
    const url = await pgServer.createDatabase(dbName);
    const server: HttpServerProcess = await startHttpServer(['--model', TINY_CE, '--db', url]);
    let exited: string | undefined;
    server.child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
    const alive = (when: string) => assert.equal(exited, undefined, `server ${when}: ${exited}\n${server.stderr().slice(-2000)}`);
    const clients: Client[] = await Promise.all(Array.from({ length: WRITERS + 1 }, () => connectHttp(server.url)));
    const acknowledged = new Set<string>();
    const errors: { at: number; text: string }[] = [];
    let lastAck = 0;
    let running = true;
    const writer = async (w: number) => {
      for (let i = 0; running; i++) {
        const query = `writer ${w} label ${i}`;
        try {
          const res = await call(clients[w], 'feedback', { items: [{ query, document: `doc ${i}`, label: i % 2 }] });
          if (res.structuredContent?.stored === 1) {
            acknowledged.add(query);
            lastAck = Date.now();
            continue;
          }
          errors.push({ at: Date.now(), text: (res.content as { text: string }[]).map((c) => c.text).join('\n') });
        } catch (err) {
          errors.push({ at: Date.now(), text: `transport: ${(err as Error).message}` });
        }
        await sleep(50);
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    const resumed = async (since: number, what: string) => {
      const deadline = Date.now() + RESUME_MS;
      while (lastAck <= since && Date.now() < deadline && exited === undefined) await sleep(50);
      alive(`after ${what}`);
      assert.ok(lastAck > since, `no write acknowledged within ${RESUME_MS} ms after ${what}; last errors: ${errors.slice(-3).map((e) => e.text).join(' | ')}`);
      if (since > 0) t.diagnostic(`${what}: writes acknowledged again ${lastAck - since} ms after PostgreSQL was back; ${acknowledged.size} acknowledged so far`);
    };
    try {
      // The first write opens and migrates the database; then some load before the first restart.
      await resumed(0, 'start');
      await sleep(300);

      for (const mode of ['fast', 'immediate'] as const) {
        await pgServer.restart(mode);
        await resumed(Date.now(), `restart -m ${mode}`);
        await sleep(300);
      }

      pgServer.stop('fast');
      const stoppedAt = Date.now();
      try {
        await sleep(800);
        alive('with PostgreSQL stopped');
        const reranked = await call(clients[WRITERS], 'rerank', { query: 'what is stored', documents: ['labels', 'nothing'] });
        assert.notEqual(reranked.isError, true, `reranking goes on without the database: ${JSON.stringify(reranked.content)}`);
        const down = errors.filter((e) => e.at > stoppedAt + 300);
        assert.ok(down.length > 0, 'feedback calls failed while PostgreSQL was stopped');
        for (const { text } of down) {
          assert.ok(!text.includes('\n'), `one line: ${text}`);
          assert.ok(text.includes(`127.0.0.1:${pgServer.port}/${dbName}`), `names host:port/db: ${text}`);
          assert.ok(!text.includes('rerank-test-secret'), `password masked: ${text}`);
          assert.match(text, /start it/, 'says how to fix it');
        }
        t.diagnostic(`while stopped: ${down.length} feedback calls failed, e.g. ${down[0].text}`);
      } finally {
        pgServer.start();
      }
      await resumed(Date.now(), 'stop then start');
    } finally {
      running = false;
      await Promise.all(writers);
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      alive('at the end');
      await server.stop();
    }
    const stored = await storedQueries(url);
    const lost = [...acknowledged].filter((q) => !stored.has(q));
    t.diagnostic(`${acknowledged.size} acknowledged, ${stored.size} stored, ${errors.length} calls failed, ${lost.length} acknowledged but lost`);
    assert.deepEqual(lost, [], 'every acknowledged label is in the database');
  });
});
