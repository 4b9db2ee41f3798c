/**
 * Nothing acknowledged is lost: four server processes write feedback to one database file
 * and are SIGKILLed at random moments; every write a client saw acknowledged must be there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { TINY_CE } from './helpers/fixtures.js';
import { connectStdio, freshDbPath } from './helpers/mcp.js';

const PROCESSES = 4;

async function writeUntilKilled(db: string, proc: number, acknowledged: Set<string>): Promise<number> {
  // In process: the SIGKILL must hit the process that writes (a shim's death leaves the shared daemon writing).
  const conn = await connectStdio(['--model', TINY_CE, '--rerank-log-max-calls', '0', '--standalone'], { RERANK_FEEDBACK_DB: db });
  // a random moment within the writing loop; a seeded sequence would hide timing-dependent losses
  // Counted from the first acknowledged write: the model loads on the first call, which takes
  // seconds on a loaded machine, and a kill before it would test nothing.
  const killAfterMs = 300 + Math.random() * 1500;
  let killer: NodeJS.Timeout | undefined;
  let n = 0;
  try {
    for (;;) {
      const query = `proc ${proc} write ${n++}`;
      const items = [0, 1, 2].map((k) => ({ query, document: `doc ${k} of ${query}`, label: k === 0 ? 1 : 0 }));
      const res = (await conn.client.callTool({ name: 'feedback', arguments: { items } })) as { isError?: boolean; structuredContent?: { stored: number } };
      assert.notEqual(res.isError, true, JSON.stringify(res));
      assert.equal(res.structuredContent!.stored, 3);
      for (const item of items) acknowledged.add(`${item.query}\u0001${item.document}`);
      killer ??= setTimeout(() => process.kill(conn.pid!, 'SIGKILL'), killAfterMs);
    }
  } catch (err) {
    // the kill ends the loop: the call in flight fails, which is expected
    if (err instanceof assert.AssertionError) throw err;
  } finally {
    clearTimeout(killer);
    await conn.close().catch(() => undefined);
  }
  return n;
}

test('SIGKILLed writers lose no acknowledged feedback and leave an intact database', async (t) => {
  const db = freshDbPath();
  const acknowledged = new Set<string>();
  const attempts = await Promise.all(Array.from({ length: PROCESSES }, (_, p) => writeUntilKilled(db, p, acknowledged)));
  t.diagnostic(`${acknowledged.size} pairs acknowledged over ${attempts.join(" + ")} calls`);
  assert.ok(acknowledged.size >= PROCESSES * 3, `only ${acknowledged.size} writes acknowledged (${attempts.join(', ')} attempted)`);
  const d = new Database(db);
  try {
    assert.equal(d.pragma('integrity_check', { simple: true }), 'ok');
    const stored = new Set((d.prepare('SELECT query, document FROM feedback_events').all() as { query: string; document: string }[]).map((r) => `${r.query}\u0001${r.document}`));
    const lost = [...acknowledged].filter((k) => !stored.has(k));
    assert.deepEqual(lost, [], `${lost.length} acknowledged writes missing`);
    // writes are transactions of three: never a partial item list
    const perQuery = d.prepare('SELECT query, COUNT(*) AS n FROM feedback_events GROUP BY query HAVING n % 3 != 0').all();
    assert.deepEqual(perQuery, []);
  } finally {
    d.close();
  }
});
