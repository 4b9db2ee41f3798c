/** `rerank-mcp tokenize`: the pair encoding the model sees, one JSON line per input pair. */
import type { Config } from '../config.js';
import { loadModel } from './load-engine.js';
import { readPairs, writeLine } from './jsonl-input.js';

export async function runTokenize(config: Config): Promise<number> {
  const model = await loadModel(config);
  model.prompt(config.instruction);
  let failures = 0;
  for await (const item of readPairs(config.input)) {
    if ('error' in item) {
      failures++;
      process.stderr.write(`${item.error}\n`);
      await writeLine({ error: item.error });
      continue;
    }
    let encoding;
    try {
      encoding = model.encode(item.pair.query, item.pair.document, config.instruction);
    } catch (err) {
      failures++;
      const error = `line ${item.line}: ${(err as Error).message}`;
      process.stderr.write(`${error}\n`);
      await writeLine({ error });
      continue;
    }
    await writeLine({ input_ids: encoding.inputIds, token_type_ids: encoding.typeIds, truncated: encoding.truncated });
  }
  await model.release();
  return failures > 0 ? 1 : 0;
}
