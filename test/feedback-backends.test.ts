/**
 * One store suite, run on both backends through the common interface (src/feedback/store.ts):
 * a SQLite file and a real PostgreSQL server (test/helpers/postgres.ts). Every test runs the
 * same calls on each; the last one also checks the two give identical exports, training sets
 * and stats for the same history.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FeedbackError, type FeedbackInput, type RerankCandidate } from '../src/feedback/feedback-store.js';
import { openStore, type FeedbackBackend } from '../src/feedback/store.js';
import { clock, tempDirs } from './helpers/feedback.js';
import { postgresSkip, startPostgres, type PostgresServer } from './helpers/postgres.js';

const tempDir = tempDirs('rerank-backends-');
const skipPostgres = postgresSkip();
let server: PostgresServer | undefined;
let databases = 0;

before(async () => {
  if (!skipPostgres) server = await startPostgres();
});
after(() => server?.destroy());

type Maker = (now?: () => Date) => Promise<FeedbackBackend>;

const BACKENDS: { name: string; skip: string | false; make: Maker }[] = [
  { name: 'sqlite', skip: false, make: (now) => openStore(join(tempDir(), 'feedback.db'), { now }) },
  { name: 'postgres', skip: skipPostgres, make: async (now) => openStore(await server!.createDatabase(`store_${++databases}`), { now }) },
];

const pair = (query: string, document: string, label: number, extra: Partial<FeedbackInput> = {}): FeedbackInput => ({ query, document, label, ...extra });

const candidates: RerankCandidate[] = [
  { index: 0, id: 'doc-a', text: 'alpha', score: 0.2, logit: -1.4 },
  { index: 1, id: 'doc-b', text: 'beta', score: 0.9, logit: 2.2 },
  { index: 2, text: 'gamma', score: 0.5, logit: 0 },
  { index: 3, id: 'doc-d', text: 'delta', score: 0.7, logit: 0.8 },
];

async function using<T>(make: Maker, work: (store: FeedbackBackend) => Promise<T>, now?: () => Date): Promise<T> {
  const store = await make(now);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** A history touching every write path, for comparing what the backends then read back. */
async function history(store: FeedbackBackend, time: ReturnType<typeof clock>): Promise<void> {
  await store.record([pair('q, "1"', 'a\nb', 1, { source: 'agent', modelId: 'm1', modelScore: 0.3 }), pair('q, "1"', 'a\nb', 0, { source: 'agent' })]);
  await store.record([pair('q2', 'emoji 🎉\u0000nul', 0.5, { metadata: { k: [1, 'x'] } }), pair('ελληνικά', '日本語 \u2028 text', 1)]);
  for (let i = 0; i < 14; i++) {
    time.advanceDays(0.5);
    const id = await store.logRerank({ query: `query ${i % 12}`, candidates: candidates.map((c) => ({ ...c, text: `${c.text} ${i}` })), modelId: 'm2', source: 'tool' });
    if (i % 3 !== 2) await store.labelRerank(id, [i % 4], [(i + 1) % 4], { sessionId: `s${i}` });
  }
}

for (const backend of BACKENDS) {
  describe(`feedback store on ${backend.name}`, { skip: backend.skip }, () => {
    test('record appends every event, counts repeats of earlier pairs, and an invalid item writes nothing', async () => {
      await using(backend.make, async (store) => {
        const first = await store.record([pair('q', 'a', 1), pair('q', 'b', 0), pair('q', 'a', 0)]);
        assert.deepEqual([first.count, first.repeats], [3, 0]);
        assert.ok(first.ids[0] < first.ids[1] && first.ids[1] < first.ids[2]);
        const second = await store.record([pair('q', 'a', 1), pair('q', 'c', 1)]);
        assert.deepEqual([second.count, second.repeats], [2, 1]);
        for (const label of [-0.1, 1.5, Number.NaN]) {
          await assert.rejects(store.record([pair('q', 'ok', 1), pair('q', 'bad', label)]), (err: Error) => err instanceof FeedbackError && /item 1: label/.test(err.message));
        }
        await assert.rejects(store.record([pair('q', 'lone \ud800', 1)]), /lone UTF-16 surrogate/);
        assert.equal((await store.stats()).events, 5);
      });
    });

    test('text round-trips exactly, NUL and line separators included', async () => {
      await using(backend.make, async (store) => {
        const texts = ['emoji 🎉\u0000nul', 'ελληνικά\u2028\u2029\r\n', '\u{10FFFF}\uFFFD', ''.padEnd(30_000, 'long ')];
        await store.record(texts.map((t, i) => pair(`q${i} ${t}`, t, 1)));
        assert.deepEqual(
          (await store.exportRows({ aggregate: 'latest' })).map((r) => r.sentence_1),
          texts,
        );
      });
    });

    test('the rerank log: labels by index and id, with the logged score; unknown or contradictory references write nothing', async () => {
      await using(backend.make, async (store) => {
        const id = await store.logRerank({ query: 'q', candidates, modelId: 'm', source: 'tool', sessionId: 's' });
        assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        const result = await store.labelRerank(id, [2, 'doc-b'], ['doc-a'], { sessionId: 's2' });
        assert.deepEqual([result.count, result.repeats], [3, 0]);
        assert.equal((await store.labelRerank(id, [2], [], {})).repeats, 1);
        const fails = (p: Promise<unknown>, pattern: RegExp) => assert.rejects(p, (err: Error) => err instanceof FeedbackError && pattern.test(err.message));
        await fails(store.labelRerank('no-such-id', [0], [], {}), /unknown rerank_id "no-such-id"/);
        await fails(store.labelRerank(id, [0, 7], [], {}), /no candidate with index 7 .*indexes 0 to 3/);
        await fails(store.labelRerank(id, [0], ['doc-zzz'], {}), /no candidate with id "doc-zzz"/);
        await fails(store.labelRerank(id, [1], ['doc-b'], {}), /both relevant and irrelevant/);
        const twin = await store.logRerank({ query: 'q', candidates: [{ index: 0, id: 'x', text: 'a', score: 1, logit: 1 }, { index: 1, id: 'x', text: 'b', score: 0, logit: 0 }], modelId: 'm' });
        await fails(store.labelRerank(twin, ['x'], [], {}), /matches 2 candidates/);
        const stats = await store.stats();
        assert.equal(stats.events, 4);
        assert.deepEqual(stats.bySource, { tool: 4 });
        assert.equal(stats.rerankCalls, 2);
        assert.deepEqual(await store.exportRows({ aggregate: 'latest' }), [
          { sentence_0: 'q', sentence_1: 'gamma', label: 1 },
          { sentence_0: 'q', sentence_1: 'beta', label: 1 },
          { sentence_0: 'q', sentence_1: 'alpha', label: 0 },
        ]);
      });
    });

    test('pruning by calls and days, the byte cap and purge', async () => {
      const time = clock();
      await using(
        backend.make,
        async (store) => {
          const ids: string[] = [];
          for (let day = 0; day < 6; day++) {
            ids.push(await store.logRerank({ query: `q${day}`, candidates, modelId: 'm' }));
            time.advanceDays(1);
          }
          await store.labelRerank(ids[0], [1], [0], {});
          assert.equal(await store.pruneRerankLog({ maxCalls: Infinity, maxDays: Infinity }), 0);
          assert.equal(await store.pruneRerankLog({ maxCalls: 5, maxDays: Infinity }), 1);
          assert.equal(await store.pruneRerankLog({ maxCalls: 100, maxDays: 3.5 }), 2);
          assert.equal((await store.stats()).rerankCalls, 3);
          await assert.rejects(store.labelRerank(ids[0], [1], [], {}), /pruned/);
          // the labels of the pruned call keep their text
          assert.equal((await store.exportRows({ aggregate: 'latest' })).length, 2);

          const perCall = 2 + candidates.reduce((n, c) => n + Buffer.byteLength(c.text), 0);
          assert.equal(await store.rerankLogBytes(), 3 * perCall);
          const eviction = await store.evictRerankLogBytes(2 * perCall, perCall);
          assert.deepEqual(eviction, { calls: 2, bytes: 2 * perCall, remaining: perCall });
          assert.equal((await store.stats()).rerankCalls, 1);

          time.advanceDays(1);
          const purged = await store.purge(time.now(), { log: true, feedback: false });
          assert.deepEqual(purged, { calls: 1, events: 0 });
          assert.deepEqual(await store.purge(time.now(), { log: false, feedback: true }), { calls: 0, events: 2 });
          assert.equal((await store.stats()).events, 0);
        },
        time.now,
      );
    });
  });
}

describe('both backends read the same history the same way', { skip: skipPostgres }, () => {
  test('export (latest, mean, mined negatives), training set and stats are identical', async () => {
    const read = async (make: Maker) => {
      const time = clock();
      return using(
        make,
        async (store) => {
          await history(store, time);
          return {
            latest: await store.exportRows({ aggregate: 'latest' }),
            mean: await store.exportRows({ aggregate: 'mean', mineNegatives: 2 }),
            set: await store.trainingSet({ negatives: 3, seed: 7 }),
            stats: await store.stats(),
          };
        },
        time.now,
      );
    };
    const [sqlite, postgres] = [await read(BACKENDS[0].make), await read(BACKENDS[1].make)];
    assert.ok(sqlite.latest.length > 10 && sqlite.set.train.length > 0, JSON.stringify(sqlite.set).slice(0, 200));
    assert.deepEqual(postgres, sqlite);
  });
});
