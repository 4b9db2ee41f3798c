/**
 * `rerank-mcp feedback export|stats|purge|check|recover`: the training set built from recorded
 * feedback, a summary of what the feedback database holds, removal of old entries, and what to
 * do with a damaged file. argv is what
 * follows `feedback`.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { DB_ENV, defaultDbPath, resolveDbPath } from '../feedback/db-path.js';
import { POSITIVE_THRESHOLD, writeCsv, writeJsonl } from '../feedback/export.js';
import { FeedbackError } from '../feedback/feedback-store.js';
import { isPostgresUrl, maskUrl, openStore, type FeedbackBackend } from '../feedback/store.js';
import { checkDatabase, recoverDatabase } from '../feedback/recover.js';
import { DEFAULT_NEGATIVES, DEFAULT_SEED } from '../feedback/training-set.js';
import { log } from '../log.js';

interface Flag {
  name: string;
  /** The value's placeholder; a flag without one is a boolean. */
  arg?: string;
  help: string;
}

const DB_FLAG: Flag = { name: 'db', arg: '<path|url>', help: `feedback database: a SQLite file or a postgres://user:password@host/db URL (env ${DB_ENV}; default ${defaultDbPath()})` };
/** check and recover read the SQLite file itself: PostgreSQL has its own tools, so they do not offer a URL. */
const SQLITE_DB_FLAG: Flag = { name: 'db', arg: '<path>', help: `the SQLite feedback file (env ${DB_ENV}; default ${defaultDbPath()}); for PostgreSQL use its own tools (pg_amcheck, pg_dump)` };
const HELP_FLAG: Flag = { name: 'help', help: 'show this help' };

const SUBCOMMANDS = {
  export: {
    summary: 'Write the training set: one row per distinct (query, document) pair, with the columns sentence_0 (query), sentence_1 (document) and label (0 to 1).',
    usage: 'rerank-mcp feedback export [--format jsonl|csv] [--out FILE] [--aggregate latest|mean] [--mine-negatives N] [--db PATH]',
    flags: [
      { name: 'format', arg: '<jsonl|csv>', help: 'JSON Lines, or RFC 4180 CSV with a header row (default jsonl)' },
      { name: 'out', arg: '<file>', help: 'write to this file, through a temporary file renamed into place (default: stdout)' },
      { name: 'aggregate', arg: '<latest|mean>', help: "a pair's label: its newest label, or the mean of all its labels (default latest)" },
      { name: 'mine-negatives', arg: '<n>', help: 'per labeled rerank call, add up to n candidates nobody labeled that ranked above a relevant one, as label 0 (default 0)' },
      DB_FLAG,
      HELP_FLAG,
    ],
  },
  stats: {
    summary: 'Print, as JSON, the events by label, source, day and model, the rerank calls logged and the pairs ready for training.',
    usage: 'rerank-mcp feedback stats [--db PATH]',
    flags: [DB_FLAG, HELP_FLAG],
  },
  check: {
    summary: 'Check the whole database file (SQLite integrity_check: every page and index entry). Prints the findings as JSON; exit 0 when sound, 1 when damaged.',
    usage: 'rerank-mcp feedback check [--db PATH]',
    flags: [SQLITE_DB_FLAG, HELP_FLAG],
  },
  recover: {
    summary: 'Copy every readable row of a damaged database (each table walked, then every sound leaf page read for the rows the walk cannot reach) into a new file that takes its place; the damaged file (and its -wal) is kept beside it as <db>.damaged-<time>. Stop servers using the file first. Prints what was recovered as JSON (rows per table, of which salvaged page by page).',
    usage: 'rerank-mcp feedback recover [--db PATH]',
    flags: [SQLITE_DB_FLAG, HELP_FLAG],
  },
  purge: {
    summary: 'Delete rerank-log entries (queries and candidate texts) and/or feedback events recorded before a date; the deleted text is overwritten on disk. Prints the counts as JSON.',
    usage: 'rerank-mcp feedback purge --before DATE [--log | --feedback | --all] [--db PATH]',
    flags: [
      { name: 'before', arg: '<date>', help: 'delete what was recorded before this UTC date or time: YYYY-MM-DD or an ISO 8601 timestamp (required)' },
      { name: 'log', help: 'delete rerank-log calls and their candidates (the default)' },
      { name: 'feedback', help: 'delete feedback events (labels): they are the training data, so only when asked' },
      { name: 'all', help: 'delete both' },
      DB_FLAG,
      HELP_FLAG,
    ],
  },
} as const satisfies Record<string, { summary: string; usage: string; flags: readonly Flag[] }>;

type Subcommand = keyof typeof SUBCOMMANDS;

const OVERVIEW = `Feedback: relevance labels recorded by agents, turned into training data.

Commands:
  export   write the training set (JSON Lines or CSV)
  stats    summarize the feedback database
  purge    delete rerank-log entries and/or feedback before a date
  check    check the database file for damage (exit 1 if damaged)
  recover  salvage a damaged database into a new file, keeping the old one

Run rerank-mcp feedback <command> --help for its options.
`;

export async function runFeedback(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === '--help' || name === '-h') {
      process.stdout.write(OVERVIEW);
      return 0;
    }
    if (name === undefined || !(name in SUBCOMMANDS)) {
      throw new FeedbackError(`${name === undefined ? 'missing command' : `unknown command "${name}"`}: expected export, stats, purge, check or recover (see rerank-mcp feedback --help)`);
    }
    const command = name as Subcommand;
    const values = parseFlags(command, rest);
    if (values.help) {
      process.stdout.write(helpText(command));
      return 0;
    }
    const dbPath = resolveDbPath(values.db as string | undefined, env);
    if (command === 'purge') return await purgeCommand(dbPath, values);
    if (command === 'check' || command === 'recover') {
      if (isPostgresUrl(dbPath)) throw new FeedbackError(`feedback ${command} works on SQLite files; for PostgreSQL (${maskUrl(dbPath)}) use its own tools (pg_amcheck, pg_dump and a restore)`);
      return command === 'check' ? checkCommand(dbPath) : recoverCommand(dbPath);
    }
    return command === 'export' ? await exportCommand(dbPath, values) : await statsCommand(dbPath);
  } catch (err) {
    log(`error: ${(err as Error).message.replace(/\s*\n\s*/g, ' ')}`);
    return 2;
  }
}

async function exportCommand(dbPath: string, values: Record<string, string | boolean | undefined>): Promise<number> {
  const format = oneOf(values.format, 'format', ['jsonl', 'csv'] as const, 'jsonl');
  const aggregate = oneOf(values.aggregate, 'aggregate', ['latest', 'mean'] as const, 'latest');
  const mine = (values['mine-negatives'] as string | undefined) ?? '0';
  if (!/^\d+$/.test(mine)) throw new FeedbackError(`--mine-negatives: expected a whole number, got "${mine}"`);
  const [rows, problem] = await withStore(dbPath, async (store) => [await store.exportRows({ aggregate, mineNegatives: Number(mine) }), await finetuneProblem(store)] as const);
  const write = format === 'csv' ? writeCsv : writeJsonl;
  const out = values.out as string | undefined;
  if (out) await writeAtomically(out, (stream) => write(rows, stream));
  else await write(rows, process.stdout);
  log(`exported ${rows.length} rows from ${shown(dbPath)}${out ? ` to ${out}` : ''}`);
  // Warnings come after the export succeeded: a failed one stays a single error line.
  if (rows.length > 0 && (rows.every((r) => r.label >= POSITIVE_THRESHOLD) || rows.every((r) => r.label < POSITIVE_THRESHOLD))) {
    log(`warning: every exported row is ${rows[0].label >= POSITIVE_THRESHOLD ? 'relevant' : 'irrelevant'}: a model trained on one class learns nothing (add --mine-negatives N, or record feedback with both relevant and irrelevant results)`);
  }
  warnIfNotTrainable(problem);
  return 0;
}

async function statsCommand(dbPath: string): Promise<number> {
  const [stats, problem] = await withStore(dbPath, async (store) => [await store.stats(), await finetuneProblem(store)] as const);
  process.stdout.write(JSON.stringify({ database: shown(dbPath), ...stats }, null, 2) + '\n');
  warnIfNotTrainable(problem);
  return 0;
}

async function purgeCommand(dbPath: string, values: Record<string, string | boolean | undefined>): Promise<number> {
  const raw = values.before as string | undefined;
  if (raw === undefined) throw new FeedbackError('--before is required, e.g. --before 2025-01-31 (see rerank-mcp feedback purge --help)');
  const before = parseDate(raw);
  const chosen = ['log', 'feedback', 'all'].filter((f) => values[f] === true);
  if (chosen.length > 1) throw new FeedbackError(`choose one of --log, --feedback or --all, not ${chosen.map((f) => `--${f}`).join(' and ')}`);
  const scope = chosen[0] ?? 'log';
  const what = { log: scope !== 'feedback', feedback: scope !== 'log' };
  const removed = await withStore(dbPath, (store) => store.purge(before, what));
  process.stdout.write(JSON.stringify({ database: shown(dbPath), before: before.toISOString(), rerank_calls_deleted: removed.calls, feedback_events_deleted: removed.events }) + '\n');
  log(`purged ${removed.calls} rerank call(s) and ${removed.events} feedback event(s) recorded before ${before.toISOString()} from ${shown(dbPath)}`);
  return 0;
}

function checkCommand(dbPath: string): number {
  const result = checkDatabase(dbPath);
  process.stdout.write(JSON.stringify({ database: dbPath, ok: result.ok, problems: result.problems.slice(0, 100) }, null, 2) + '\n');
  if (result.ok) {
    log(`${dbPath}: no damage found`);
    return 0;
  }
  log(`${dbPath} is damaged (${result.problems.length} problem(s), first: ${result.problems[0]}): run rerank-mcp feedback recover --db ${dbPath} to salvage what is readable (the damaged file is kept)`);
  return 1;
}

function recoverCommand(dbPath: string): number {
  const result = recoverDatabase(dbPath);
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  const lost = Object.values(result.skipped).reduce((a, b) => a + b, 0);
  log(`recovered ${result.rows.feedback_events} feedback event(s) and ${result.rows.rerank_calls} rerank call(s) into ${dbPath}${lost > 0 ? `; ${lost} unreadable stretch(es) skipped` : ''}; the damaged file is kept as ${result.backup}`);
  return 0;
}

/** YYYY-MM-DD (midnight UTC) or a full ISO 8601 timestamp; anything else is refused rather than guessed. */
function parseDate(raw: string): Date {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(raw);
  const stamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(raw);
  const date = new Date(day ? `${raw}T00:00:00Z` : raw);
  if ((!day && !stamp) || Number.isNaN(date.getTime())) {
    throw new FeedbackError(`--before: expected a date as YYYY-MM-DD or an ISO 8601 timestamp with a time zone (e.g. 2025-01-31T12:00:00Z), got "${raw}"`);
  }
  return date;
}

/** The check `rerank-mcp finetune` refuses on, with its defaults. */
const finetuneProblem = async (store: FeedbackBackend): Promise<string | null> => (await store.trainingSet({ negatives: DEFAULT_NEGATIVES, seed: DEFAULT_SEED })).problem;

/** What output names the database by: a URL's password is never printed. */
const shown = (dbPath: string): string => (isPostgresUrl(dbPath) ? maskUrl(dbPath) : dbPath);

function warnIfNotTrainable(problem: string | null): void {
  if (problem) log(`warning: rerank-mcp finetune would refuse this database: ${problem}`);
}

/** Read commands never create a SQLite file: a missing one is far more likely a wrong path. */
async function withStore<T>(dbPath: string, use: (store: FeedbackBackend) => Promise<T>): Promise<T> {
  if (!isPostgresUrl(dbPath) && !existsSync(dbPath)) throw new FeedbackError(`no feedback database at ${dbPath} (nothing recorded yet, or pass --db / set ${DB_ENV})`);
  const store = await openStore(dbPath);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

/** Readers of `file` see the old content or the complete new one, never a partial export. */
async function writeAtomically(file: string, fill: (stream: NodeJS.WritableStream) => Promise<void>): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  // flush: fsync before close, so the rename never installs a file whose data is not on disk.
  const stream = createWriteStream(tmp, { flush: true });
  try {
    await fill(stream);
    stream.end();
    await finished(stream);
    await rename(tmp, file);
  } catch (err) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw new FeedbackError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

function parseFlags(command: Subcommand, args: string[]): Record<string, string | boolean | undefined> {
  const flags: readonly Flag[] = SUBCOMMANDS[command].flags;
  try {
    return parseArgs({
      args,
      options: Object.fromEntries(flags.map((f) => [f.name, f.arg ? { type: 'string' as const } : { type: 'boolean' as const, ...(f.name === 'help' ? { short: 'h' } : {}) }])),
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (err) {
    throw new FeedbackError(`${(err as Error).message} (see rerank-mcp feedback ${command} --help)`);
  }
}

function oneOf<T extends string>(value: string | boolean | undefined, flag: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw new FeedbackError(`--${flag}: expected one of ${allowed.join(', ')}, got "${String(value)}"`);
  return value as T;
}

function helpText(command: Subcommand): string {
  const { summary, usage, flags } = SUBCOMMANDS[command];
  const lines = (flags as readonly Flag[]).map((f) => `  --${f.name}${f.arg ? ` ${f.arg}` : ''}\n      ${f.help}`);
  return `${summary}\n\nUsage: ${usage}\n\nOptions:\n${lines.join('\n')}\n`;
}
