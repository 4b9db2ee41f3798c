/**
 * `rerank-mcp rollback DIR`: puts back the model that the last `finetune --promote-to DIR` (or
 * rollback) replaced, the same way a promotion installs one, so a server watching DIR switches
 * back. The model rolled back from becomes DIR/.previous: a second rollback undoes the first.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { log } from '../log.js';
import { hasPrevious, installModel, PREVIOUS } from './model-swap.js';

const HELP = `Put back the model that the last finetune --promote-to DIR replaced (kept in DIR/${PREVIOUS}).
A server watching DIR reloads it; the replaced model becomes DIR/${PREVIOUS}, so rolling back twice undoes it.

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
  if (!hasPrevious(dir)) {
    log(`error: no previous model in ${join(dir, PREVIOUS)}: rollback puts back what finetune --promote-to ${dir} replaced, and nothing was replaced there yet`);
    return 2;
  }
  try {
    installModel(join(dir, PREVIOUS), dir);
  } catch (err) {
    log(`error: rollback of ${dir} failed: ${(err as Error).message}`);
    return 2;
  }
  log(`rolled back ${dir} to its previous model; the replaced one is now in ${join(dir, PREVIOUS)}`);
  process.stdout.write(JSON.stringify({ dir, rolled_back: true }) + '\n');
  return 0;
}
