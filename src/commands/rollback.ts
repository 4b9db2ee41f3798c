/**
 * `rerank-mcp rollback DIR`: switches DIR back to the model the last promotion (or rollback)
 * replaced, with the same single atomic step a promotion takes, so a server watching DIR follows.
 * The model rolled back from becomes the one a second rollback returns to.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { log } from '../log.js';
import { CURRENT, NothingToRollBack, rollbackModel, VERSIONS } from './model-swap.js';

const HELP = `Put back the model that the last finetune --promote-to DIR (or rollback) replaced.
DIR/${CURRENT} is switched back to that version (kept in DIR/${VERSIONS}/) in one atomic step; a server
watching DIR reloads it, and rolling back twice undoes it.

Usage: rerank-mcp rollback DIR

Exit codes: 0 rolled back, 2 nothing to roll back or bad arguments.
`;

export function runRollback(argv: string[]): number {
  let dirArg: string | undefined;
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (positionals.length !== 1) throw new Error(`expected one model directory, got ${positionals.length} (usage: rerank-mcp rollback DIR)`);
    dirArg = positionals[0];
  } catch (err) {
    log(`error: ${(err as Error).message}`);
    return 2;
  }
  const dir = resolve(dirArg);
  let served: string;
  try {
    served = rollbackModel(dir);
  } catch (err) {
    log(err instanceof NothingToRollBack ? `error: ${err.message}` : `error: rollback of ${dir} failed: ${(err as Error).message}`);
    return 2;
  }
  log(`rolled back ${dir}: it serves ${served} again; rerank-mcp rollback ${dir} once more undoes this`);
  process.stdout.write(JSON.stringify({ dir, serving: served, rolled_back: true }) + '\n');
  return 0;
}
