/**
 * `rerank-mcp score`: one JSON line of {score, logit, truncated} per input pair, in order.
 * Pairs go to the engine in groups so batching pays off without reading the whole input.
 */
import type { Config } from '../config.js';
import type { Pair } from '../engine/scoring-engine.js';
import { loadEngine } from './load-engine.js';
import { readPairs, writeLine, type InputLine } from './jsonl-input.js';

const GROUP = 256;

export async function runScore(config: Config): Promise<number> {
  const engine = await loadEngine(config);
  let failures = 0;
  let group: InputLine[] = [];
  const flush = async () => {
    const pairs = group.flatMap((g) => ('pair' in g ? [g.pair] : [])) as Pair[];
    const scores = await engine.scorePairs(pairs);
    let next = 0;
    for (const g of group) {
      if ('pair' in g) await writeLine(scores[next++]);
      else {
        failures++;
        process.stderr.write(`${g.error}\n`);
        await writeLine({ error: g.error });
      }
    }
    group = [];
  };
  for await (const item of readPairs(config.input)) {
    group.push(item);
    if (group.length >= GROUP) await flush();
  }
  await flush();
  await engine.model.release();
  return failures > 0 ? 1 : 0;
}
