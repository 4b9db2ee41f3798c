/** `rerank-mcp feedback export|stats`: in-process for files, as a child process where stdout and stderr matter. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { runFeedback } from '../src/commands/feedback.js';
import { FeedbackStore } from '../src/feedback/feedback-store.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fresh directory holding a database with two pairs and a labeled rerank call. */
function seeded(): { dir: string; db: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rerank-feedback-cli-'));
  dirs.push(dir);
  const db = join(dir, 'feedback.db');
  const store = FeedbackStore.open(db);
  store.record([
    { query: 'q, "1"', document: 'a\nb', label: 1, source: 'agent' },
    { query: 'q, "1"', document: 'a\nb', label: 0, source: 'agent' },
    { query: 'q2', document: 'emoji 🎉\u0000nul', label: 0.5, source: 'agent' },
  ]);
  const id = store.logRerank({
    query: 'q3',
    modelId: 'm',
    candidates: [
      { index: 0, text: 'top', score: 0.9, logit: 2 },
      { index: 1, text: 'right', score: 0.5, logit: 0 },
    ],
  });
  store.labelRerank(id, [1], [], { source: 'tool' });
  store.close();
  return { dir, db };
}

const ENTRY = pathToFileURL(resolve('src/commands/feedback.ts')).href;

/** Runs runFeedback in a child, to see its stdout, stderr and exit code. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const script = `import { runFeedback } from ${JSON.stringify(ENTRY)}; process.exitCode = await runFeedback(process.argv.slice(1));`;
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', ...args], {
    encoding: 'utf8',
    env: { ...process.env, RERANK_FEEDBACK_DB: '', ...env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('feedback export', () => {
  test('--out writes JSON Lines atomically, leaving no temp file', async () => {
    const { dir, db } = seeded();
    const out = join(dir, 'train.jsonl');
    writeFileSync(out, 'old content');
    assert.equal(await runFeedback(['export', '--db', db, '--out', out]), 0);
    assert.deepEqual(
      readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l)),
      [
        { sentence_0: 'q, "1"', sentence_1: 'a\nb', label: 0 },
        { sentence_0: 'q2', sentence_1: 'emoji 🎉\u0000nul', label: 0.5 },
        { sentence_0: 'q3', sentence_1: 'right', label: 1 },
      ],
    );
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  });

  test('--format csv with --aggregate mean and --mine-negatives', async () => {
    const { dir, db } = seeded();
    const out = join(dir, 'train.csv');
    assert.equal(await runFeedback(['export', '--format', 'csv', '--aggregate', 'mean', '--mine-negatives', '3', '--out', out, '--db', db]), 0);
    assert.equal(
      readFileSync(out, 'utf8'),
      'sentence_0,sentence_1,label\r\n"q, ""1""","a\nb",0.5\r\nq2,emoji 🎉\u0000nul,0.5\r\nq3,right,1\r\nq3,top,0\r\n',
    );
  });

  test('writes to stdout by default, finding the database through RERANK_FEEDBACK_DB', () => {
    const { db } = seeded();
    const result = cli(['export'], { RERANK_FEEDBACK_DB: db });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trimEnd().split('\n').length, 3);
    assert.deepEqual(JSON.parse(result.stdout.split('\n')[1]), { sentence_0: 'q2', sentence_1: 'emoji 🎉\u0000nul', label: 0.5 });
  });

  test('errors are one line on stderr and exit 2', () => {
    const { dir, db } = seeded();
    const cases = [
      ['export', '--db', join(dir, 'missing.db')],
      ['export', '--db', db, '--format', 'xml'],
      ['export', '--db', db, '--aggregate', 'max'],
      ['export', '--db', db, '--mine-negatives', '-1'],
      ['export', '--db', db, '--bogus'],
      ['export', '--db', db, '--out', join(dir, 'no', 'such', 'dir.jsonl')],
      ['stats', '--db', db, 'extra'],
      ['frobnicate'],
      [],
    ];
    for (const args of cases) {
      const result = cli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '', args.join(' '));
      assert.match(result.stderr, /^\[rerank-mcp\] error: [^\n]+\n$/, args.join(' '));
    }
    assert.match(cli(['export', '--db', join(dir, 'missing.db')]).stderr, /no feedback database at .*missing\.db/);
  });

  test('--help names every flag and the environment variable', () => {
    const result = cli(['export', '--help']);
    assert.equal(result.code, 0);
    for (const flag of ['--format', '--out', '--aggregate', '--mine-negatives', '--db', '--help', 'RERANK_FEEDBACK_DB']) assert.ok(result.stdout.includes(flag), flag);
    assert.equal(cli(['export', '-h']).stdout, result.stdout);
  });
});

describe('feedback stats', () => {
  test('prints the stats as JSON', () => {
    const { db } = seeded();
    const result = cli(['stats', '--db', db]);
    assert.equal(result.code, 0, result.stderr);
    const stats = JSON.parse(result.stdout);
    assert.equal(stats.database, db);
    assert.equal(stats.events, 4);
    assert.deepEqual(stats.byLabel, { zero: 1, one: 2, other: 1 });
    assert.deepEqual(stats.bySource, { agent: 3, tool: 1 });
    assert.deepEqual(stats.byModel, { '(none)': 3, m: 1 });
    assert.equal(stats.rerankCalls, 1);
    assert.deepEqual(stats.trainingPairs, { total: 3, positive: 2, negative: 1 });
  });

  test('--help names every flag and the environment variable', () => {
    const result = cli(['stats', '--help']);
    assert.equal(result.code, 0);
    for (const flag of ['--db', '--help', 'RERANK_FEEDBACK_DB']) assert.ok(result.stdout.includes(flag), flag);
    assert.match(cli(['--help']).stdout, /export[\s\S]*stats/);
  });
});

describe('feedback check and recover', () => {
  test('--help offers only what they accept: a SQLite file, not a postgres:// URL', () => {
    for (const command of ['check', 'recover']) {
      const help = cli([command, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /--db <path>/);
      assert.doesNotMatch(help.stdout, /postgres:\/\/|<path\|url>/, `${command} --help`);
      const refused = cli([command, '--db', 'postgres://u:p@127.0.0.1:1/x']);
      assert.match(refused.stderr, /works on SQLite files/);
    }
    const { db } = seeded();
    assert.equal(JSON.parse(cli(['check', '--db', db]).stdout).database, db);
  });
});

describe('feedback purge', () => {
  const day = new Date().toISOString().slice(0, 10);
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

  test('--log (the default) empties the rerank log and keeps the labels; --feedback then the labels', () => {
    const { db } = seeded();
    const first = cli(['purge', '--before', tomorrow, '--db', db]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { database: db, before: `${tomorrow}T00:00:00.000Z`, rerank_calls_deleted: 1, feedback_events_deleted: 0 });
    assert.match(first.stderr, /purged 1 rerank call\(s\) and 0 feedback event\(s\)/);
    const second = cli(['purge', '--before', tomorrow, '--feedback', '--db', db]);
    assert.equal(JSON.parse(second.stdout).feedback_events_deleted, 4);
    const store = FeedbackStore.open(db);
    assert.equal(store.stats().events, 0);
    store.close();
  });

  test('--all before a past date removes nothing newer', () => {
    const { db } = seeded();
    const res = cli(['purge', '--before', '2000-01-01T00:00:00Z', '--all', '--db', db]);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual([JSON.parse(res.stdout).rerank_calls_deleted, JSON.parse(res.stdout).feedback_events_deleted], [0, 0]);
    const all = cli(['purge', '--before', tomorrow, '--all', '--db', db]);
    assert.deepEqual([JSON.parse(all.stdout).rerank_calls_deleted, JSON.parse(all.stdout).feedback_events_deleted], [1, 4]);
  });

  test('a missing or bad --before, or two scopes, is one error line and exit 2', () => {
    const { db } = seeded();
    for (const [args, pattern] of [
      [['purge', '--db', db], /--before is required/],
      [['purge', '--before', 'last week', '--db', db], /--before: expected a date as YYYY-MM-DD/],
      [['purge', '--before', `${day}T10:00:00`, '--db', db], /with a time zone/],
      [['purge', '--before', day, '--log', '--all', '--db', db], /choose one of --log, --feedback or --all/],
    ] as const) {
      const res = cli([...args]);
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr, pattern);
    }
  });
});
