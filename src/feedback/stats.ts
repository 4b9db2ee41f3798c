/** What the feedback database holds, for `rerank-mcp feedback stats` and the lead's tools. */
import type { Database } from 'better-sqlite3';
import { PAIR_SQL, POSITIVE_THRESHOLD } from './export.js';

export interface FeedbackStats {
  events: number;
  /** Events by label: exactly 0, exactly 1, anything between. */
  byLabel: { zero: number; one: number; other: number };
  /** Keyed by source, day (YYYY-MM-DD, UTC) and model id; a missing value counts under "(none)". */
  bySource: Record<string, number>;
  byDay: Record<string, number>;
  byModel: Record<string, number>;
  /** Calls currently in the (pruned) rerank log. */
  rerankCalls: number;
  /** The rows exportRows({ aggregate: 'latest' }) gives; positive: label >= 0.5, the rest negative. */
  trainingPairs: { total: number; positive: number; negative: number };
}

const NONE = '(none)';

export function readStats(db: Database): FeedbackStats {
  const tally = (column: string): Record<string, number> => {
    const rows = db.prepare(`SELECT ${column} AS k, COUNT(*) AS n FROM feedback_events GROUP BY k ORDER BY k`).all() as { k: string | null; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.k ?? NONE, r.n]));
  };
  const byLabel = db
    .prepare(`SELECT COUNT(*) FILTER (WHERE label = 0) AS zero, COUNT(*) FILTER (WHERE label = 1) AS one,
      COUNT(*) FILTER (WHERE label <> 0 AND label <> 1) AS other FROM feedback_events`)
    .get() as FeedbackStats['byLabel'];
  // The export's own query, so the count cannot drift from what an export writes.
  const pairs = db
    .prepare(`SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE label >= ${POSITIVE_THRESHOLD}) AS positive FROM (${PAIR_SQL.latest})`)
    .get() as { total: number; positive: number };
  return {
    events: byLabel.zero + byLabel.one + byLabel.other,
    byLabel,
    bySource: tally('source'),
    byDay: tally('substr(created_at, 1, 10)'),
    byModel: tally('model_id'),
    rerankCalls: (db.prepare('SELECT COUNT(*) AS n FROM rerank_calls').get() as { n: number }).n,
    trainingPairs: { total: pairs.total, positive: pairs.positive, negative: pairs.total - pairs.positive },
  };
}
