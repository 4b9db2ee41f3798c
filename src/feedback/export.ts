/**
 * The training set: one row per distinct (query, document) pair with the columns the seed
 * training script reads (sentence_0 = query, sentence_1 = document, label as a float), plus
 * optional hard negatives mined from the rerank log, and the JSON Lines and CSV writers.
 */
import { once } from 'node:events';
import type { Database } from 'better-sqlite3';

export interface TrainingRow {
  sentence_0: string;
  sentence_1: string;
  label: number;
}

export interface ExportOptions {
  /** latest: the label of the pair's newest event; mean: the mean of all its labels. */
  aggregate: 'latest' | 'mean';
  /** Per labeled rerank call, at most this many unlabeled candidates ranked above a relevant one, as label 0. */
  mineNegatives?: number;
}

/** A label at or above this counts as relevant, for mining and for the stats' positive/negative split. */
export const POSITIVE_THRESHOLD = 0.5;

// Both orders follow each pair's first event, so new feedback does not reshuffle earlier rows.
export const PAIR_SQL = {
  latest: `SELECT e.query, e.document, e.label
    FROM (SELECT MIN(id) AS first, MAX(id) AS last FROM feedback_events GROUP BY query, document) AS p
    JOIN feedback_events AS e ON e.id = p.last
    ORDER BY p.first`,
  mean: `SELECT query, document, AVG(label) AS label FROM feedback_events GROUP BY query, document ORDER BY MIN(id)`,
} as const;

export interface PairRow {
  query: string;
  document: string;
  label: number;
}

/** Rerank calls somebody labeled by rerank_id, oldest first: where negatives come from. */
export const LABELED_CALLS_SQL = `SELECT rerank_id, query FROM rerank_calls AS c
  WHERE EXISTS (SELECT 1 FROM feedback_events AS e WHERE e.rerank_id = c.rerank_id) ORDER BY id`;

export function selectTrainingRows(db: Database, options: ExportOptions): TrainingRow[] {
  const mine = options.mineNegatives ?? 0;
  const rows = (db.prepare(PAIR_SQL[options.aggregate]).all() as PairRow[]).map((r) => trainingRow(r.query, r.document, r.label));
  return mine > 0 ? rows.concat(mineHardNegatives(db, mine, new Set(rows.map((r) => pairKey(r.sentence_0, r.sentence_1))))) : rows;
}

/**
 * For each labeled rerank call: the candidates the model ranked above a relevant one that
 * nobody labeled in that call, best-ranked first (the model's most confident mistakes, assuming
 * an agent labels what it looked at). Pairs already in `exported` are skipped and added to it.
 */
function mineHardNegatives(db: Database, perCall: number, exported: Set<string>): TrainingRow[] {
  const calls = db.prepare(LABELED_CALLS_SQL).all() as { rerank_id: string; query: string }[];
  const labelsOf = db.prepare('SELECT document, label FROM feedback_events WHERE rerank_id = ? ORDER BY id');
  const candidatesOf = db.prepare('SELECT text, rank FROM rerank_candidates WHERE rerank_id = ? ORDER BY rank');
  const mined: TrainingRow[] = [];
  for (const call of calls) {
    // Later events win, as in the latest aggregate.
    const labels = new Map((labelsOf.all(call.rerank_id) as { document: string; label: number }[]).map((e) => [e.document, e.label]));
    const candidates = candidatesOf.all(call.rerank_id) as { text: string; rank: number }[];
    const relevantRanks = candidates.filter((c) => (labels.get(c.text) ?? -1) >= POSITIVE_THRESHOLD).map((c) => c.rank);
    if (relevantRanks.length === 0) continue;
    const lowestRelevant = Math.max(...relevantRanks);
    let taken = 0;
    for (const c of candidates) {
      if (taken === perCall || c.rank >= lowestRelevant) break;
      const key = pairKey(call.query, c.text);
      if (labels.has(c.text) || exported.has(key)) continue;
      exported.add(key);
      mined.push(trainingRow(call.query, c.text, 0));
      taken++;
    }
  }
  return mined;
}

export function trainingRow(query: string, document: string, label: number): TrainingRow {
  return { sentence_0: query, sentence_1: document, label };
}

/** Unambiguous for any strings, NUL and separators included. */
export function pairKey(query: string, document: string): string {
  return JSON.stringify([query, document]);
}

// Characters that Python's str.splitlines() (which python/finetune.py reads exports with) breaks
// lines at, beyond CR and LF. JSON.stringify escapes those below U+0020 but not NEL, LS or PS.
const UNESCAPED_LINE_BREAKS = /[\u0085\u2028\u2029]/g;
const PYTHON_LINE_BREAKS = /[\n\v\f\r\u001c-\u001e\u0085\u2028\u2029]/;

/** One JSON object per line, and a row is one line for any line splitter. */
export async function writeJsonl(rows: Iterable<TrainingRow>, stream: NodeJS.WritableStream): Promise<void> {
  for (const r of rows) {
    const json = JSON.stringify(trainingRow(r.sentence_0, r.sentence_1, r.label));
    await write(stream, json.replace(UNESCAPED_LINE_BREAKS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n');
  }
}

/** RFC 4180: CRLF line ends, a header, quoted fields with their quotes doubled. */
export async function writeCsv(rows: Iterable<TrainingRow>, stream: NodeJS.WritableStream): Promise<void> {
  await write(stream, 'sentence_0,sentence_1,label\r\n');
  for (const r of rows) await write(stream, `${csvField(r.sentence_0)},${csvField(r.sentence_1)},${r.label}\r\n`);
}

// A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
// Cells that already start with quotes before one get one more, so python/finetune.py can take
// exactly one off again and the text round-trips.
const FORMULA_START = /^'*[=+\-@\t\r]/;

/**
 * RFC 4180 requires quotes around a comma, quote, CR or LF; quoting is allowed anywhere, so
 * fields with any other line break go quoted too, or Python's csv reader would split them.
 * Texts come from agents and documents nobody vetted, so a cell a spreadsheet would evaluate
 * gets a leading single quote, which spreadsheets show as text (JSON Lines stays exact).
 */
export function csvField(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",]/.test(safe) || PYTHON_LINE_BREAKS.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** Waits only when the stream asks to, so a large export neither buffers whole nor crawls. */
async function write(stream: NodeJS.WritableStream, chunk: string): Promise<void> {
  if (!stream.write(chunk)) await once(stream, 'drain');
}
