#!/usr/bin/env node
/** The rerank-mcp binary: picks a subcommand, parses its options, reports errors in one line. */
import './telemetry-off.js';
import { ConfigError, helpFor, parseConfig, printableConfig } from './config.js';
import { ModelLoadError } from './model/model-dir.js';
import { runScore } from './commands/score.js';
import { runServe } from './commands/serve.js';
import { runTokenize } from './commands/tokenize.js';
import { runFeedback } from './commands/feedback.js';
import { runClientConfig } from './commands/client-config.js';
import { runFinetune } from './commands/finetune.js';
import { runRollback } from './commands/rollback.js';
import { log } from './log.js';
import { PACKAGE_VERSION } from './version.js';

const COMMANDS = {
  serve: { run: runServe, summary: 'Run the MCP server (stdio by default, --http for Streamable HTTP).', usage: 'rerank-mcp [serve] [--model <dir|owner/name>] [--http [--port N] [--host H]]' },
  score: { run: runScore, summary: 'Score JSON Lines of {"query","document"}: one {"score","logit","truncated"} line per input, in order.', usage: 'rerank-mcp score [--model <dir|owner/name>] [--input FILE]' },
  tokenize: { run: runTokenize, summary: 'Tokenize JSON Lines of {"query","document"}: one {"input_ids","token_type_ids","truncated"} line per input.', usage: 'rerank-mcp tokenize [--model <dir|owner/name>] [--input FILE]' },
} as const;

type CommandName = keyof typeof COMMANDS;

/** Commands with subcommands or flags of their own: they take none of the model/server options. */
const OWN_FLAGS = {
  feedback: runFeedback,
  'client-config': runClientConfig,
  finetune: runFinetune,
  rollback: runRollback,
} as const;

const OVERVIEW = `rerank-mcp ${PACKAGE_VERSION}: a local cross-encoder reranker as an MCP server.

Commands:
  serve      run the MCP server (default)
  score      score query/document pairs from JSON Lines
  tokenize   show the token ids of query/document pairs
  feedback   export recorded feedback as training data, or show its stats
  client-config <claude-desktop|cursor|vscode|claude-code> [--write]
             the config entry that makes an MCP client launch this installation
  finetune   train on recorded feedback, evaluate, and promote into a served model directory
  rollback   put back the model the last promotion replaced

Run rerank-mcp <command> --help for its options.
`;

async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${PACKAGE_VERSION}\n`);
    return 0;
  }
  if (first !== undefined && Object.hasOwn(OWN_FLAGS, first)) return OWN_FLAGS[first as keyof typeof OWN_FLAGS](argv.slice(1));
  const named = first !== undefined && first in COMMANDS;
  const name: CommandName = named ? (first as CommandName) : 'serve';
  const rest = named ? argv.slice(1) : argv;
  if (!named && first !== undefined && !first.startsWith('-')) {
    throw new ConfigError(`unknown command "${first}" (expected ${[...Object.keys(COMMANDS), ...Object.keys(OWN_FLAGS)].join(', ')})`);
  }
  if (!named && (first === '--help' || first === '-h')) {
    process.stdout.write(OVERVIEW + '\n' + helpFor('serve', COMMANDS.serve.summary, COMMANDS.serve.usage));
    return 0;
  }
  const command = COMMANDS[name];
  const config = parseConfig(rest.map((a) => (a === '-h' ? '--help' : a)), process.env, name);
  if (config.help) {
    process.stdout.write(helpFor(name, command.summary, command.usage));
    return 0;
  }
  if (config.printConfig) {
    process.stdout.write(JSON.stringify(printableConfig(config, name), null, 2) + '\n');
    return 0;
  }
  return command.run(config);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // Expected failures (bad flags, missing files) are one line; RERANK_DEBUG=1 adds the stack of anything else.
    const expected = err instanceof ConfigError || err instanceof ModelLoadError;
    log(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (!expected && process.env.RERANK_DEBUG) log((err as Error).stack ?? '');
    process.exit(2);
  },
);
