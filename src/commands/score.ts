/**
 * `rerank-mcp score`: one JSON line of {score, logit, truncated} per input pair, in order.
 * By default it batches like sentence-transformers' predict (input order, fixed batch size),
 * so an offline run reproduces a Python run even for int8; --batch-size 0 uses the server's
 * length-sorted token-budget batching instead.
 */
import type { Config } from '../config.js';
import type { Pair } from '../engine/scoring-engine.js';
import { loadEngine } from './load-engine.js';
import { readPairs, writeLine, type InputLine } from './jsonl-input.js';


export async function runScore(config: Config): Promise<number> {
  const engine = await loadEngine(config);
  // An instruction the model has no template for is refused once, before any input is read.
  engine.model.prompt(config.instruction);
  let failures = 0;
  let group: InputLine[] = [];
  let pending = 0;
  const flush = async () => {
    const pairs = group.flatMap((g) => ('pair' in g ? [g.pair] : [])) as Pair[];
    const scores = config.batchSize > 0 ? await engine.scoreInInputOrder(pairs, config.batchSize, config.instruction) : await engine.scorePairs(pairs, { instruction: config.instruction });
    let next = 0;
    for (const g of group) {
      if ('pair' in g) {
        const { score, logit, truncated } = scores[next++];
        await writeLine({ score, logit, truncated });
      }
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
    // Whole batches per flush, so batch boundaries fall where an all-at-once run puts them.
    if ('pair' in item && ++pending >= Math.max(config.batchSize, 1) * 16) {
      await flush();
      pending = 0;
    }
  }
  await flush();
  await engine.model.release();
  return failures > 0 ? 1 : 0;
}
