/**
 * What `rerank-mcp finetune` trains and evaluates on, straight from the feedback database:
 * the labeled pairs, negatives taken from the rerank log, and held-out rerank calls split by
 * query. `feedback stats` and `feedback export` run the same readiness check, so they warn
 * about a database that finetune would refuse.
 */
import type { Database } from 'better-sqlite3';
import { LABELED_CALLS_SQL, PAIR_SQL, POSITIVE_THRESHOLD, pairKey, trainingRow, type PairRow, type TrainingRow } from './export.js';

/** One held-out rerank call: every logged candidate in input order, with its label (unlabeled: 0). */
export interface EvalCall {
  query: string;
  documents: string[];
  labels: number[];
}

export interface TrainingSetOptions {
  /** Per labeled rerank call, at most this many of its candidates nobody labeled, best-ranked first, as label 0. */
  negatives: number;
  /** Seeds the split of queries into training and held-out. */
  seed: number;
}

export interface TrainingSet {
  train: TrainingRow[];
  eval: EvalCall[];
  /** Distinct queries of logged rerank calls with a relevant label: the ones that can be held out. */
  labeledQueries: number;
  evalQueries: number;
  positives: number;
  negatives: number;
  /** Why finetune would refuse this set, as one line saying what feedback to give; null when it is usable. */
  problem: string | null;
}

/** Shares of queries held out, and the fewest held-out queries a gate may be judged on. */
export const EVAL_FRACTION = 0.2;
export const MIN_EVAL_QUERIES = 5;
/**
 * Chosen by scripts/finetune-defaults.ts (numbers in docs/finetune.md): per labeled call, the
 * candidates nobody labeled that are used as negatives.
 */
export const DEFAULT_NEGATIVES = 4;
export const DEFAULT_SEED = 42;

interface LabeledCall {
  query: string;
  /** Input order (idx), with each candidate's rank and label (undefined: nobody labeled it). */
  candidates: { text: string; rank: number; label: number | undefined }[];
}

export function selectTrainingSet(db: Database, options: TrainingSetOptions): TrainingSet {
  const pairs = db.prepare(PAIR_SQL.latest).all() as PairRow[];
  const labelOf = new Map(pairs.map((p) => [pairKey(p.query, p.document), p.label]));

  // Calls that somebody labeled by rerank_id and that have a relevant candidate: only then are
  // the others known to be worse (an agent marks what was right among what it saw).
  const callRows = db.prepare(LABELED_CALLS_SQL).all() as { rerank_id: string; query: string }[];
  const candidatesOf = db.prepare('SELECT text, rank FROM rerank_candidates WHERE rerank_id = ? ORDER BY idx');
  const calls: LabeledCall[] = [];
  for (const row of callRows) {
    const candidates = (candidatesOf.all(row.rerank_id) as { text: string; rank: number }[]).map((c) => ({ ...c, label: labelOf.get(pairKey(row.query, c.text)) }));
    if (candidates.some((c) => (c.label ?? 0) >= POSITIVE_THRESHOLD)) calls.push({ query: row.query, candidates });
  }

  const queries = [...new Set(calls.map((c) => c.query))].sort();
  const nEval = Math.max(MIN_EVAL_QUERIES, Math.round(queries.length * EVAL_FRACTION));
  const enough = queries.length >= 2 * MIN_EVAL_QUERIES;
  const held = new Set(enough ? shuffled(queries, options.seed).slice(0, nEval) : []);

  const train: TrainingRow[] = pairs.filter((p) => !held.has(p.query)).map((p) => trainingRow(p.query, p.document, p.label));
  const taken = new Set(train.map((r) => pairKey(r.sentence_0, r.sentence_1)));
  for (const call of calls) {
    if (held.has(call.query)) continue;
    let n = 0;
    for (const c of [...call.candidates].sort((a, b) => a.rank - b.rank)) {
      if (n === options.negatives) break;
      const k = pairKey(call.query, c.text);
      if (c.label !== undefined || taken.has(k)) continue;
      taken.add(k);
      train.push(trainingRow(call.query, c.text, 0));
      n++;
    }
  }
  const evalCalls = calls
    .filter((c) => held.has(c.query))
    .map((c) => ({ query: c.query, documents: c.candidates.map((x) => x.text), labels: c.candidates.map((x) => x.label ?? 0) }));

  const positives = train.filter((r) => r.label >= POSITIVE_THRESHOLD).length;
  const negatives = train.length - positives;
  // Classes first: a one-class set is the commoner mistake (relevant-only labels) and more calls would not fix it.
  let problem: string | null = null;
  if (positives === 0 || negatives === 0) {
    const has = positives === 0 ? 'no relevant pairs' : 'no irrelevant pairs';
    const fix = positives === 0
      ? 'mark the right results with feedback {rerank_id, relevant}'
      : `mark wrong results with feedback {rerank_id, irrelevant}, or label rerank calls by rerank_id so their unlabeled candidates count as negatives${options.negatives === 0 ? ' (--negatives > 0)' : ''}`;
    problem = `the training set has ${has}: ${fix}`;
  } else if (!enough) {
    problem = `only ${queries.length} distinct queries have a rerank call labeled with a relevant result; fine-tuning needs at least ${2 * MIN_EVAL_QUERIES} (${MIN_EVAL_QUERIES} are held out to check the new model): call feedback {rerank_id, relevant} after more rerank calls`;
  }
  return { train, eval: evalCalls, labeledQueries: queries.length, evalQueries: held.size, positives, negatives, problem };
}

/** Fisher-Yates with a seeded 32-bit generator (mulberry32): the same queries give the same split. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
