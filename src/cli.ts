#!/usr/bin/env node
/** The rerank-mcp binary: picks a subcommand, parses its options, reports errors in one line. */
import './telemetry-off.js';
import { fileURLToPath } from 'node:url';
import { ConfigError, helpFor, parseConfig, printableConfig, type Config } from './config.js';
import { log, setLogFormat } from './log.js';
import { PACKAGE_VERSION } from './version.js';

// Commands are imported when run: the stdio shim, the default command, must not load the engine,
// ONNX Runtime, the tokenizer or SQLite (it runs once per client; its memory is what a client costs).
const COMMANDS = {
  serve: { run: runServeCommand, summary: 'Run the MCP server (stdio by default, through the shared per-user daemon unless --standalone; --http for Streamable HTTP).', usage: 'rerank-mcp [serve] [--model <dir|owner/name>] [--standalone] [--http [--port N] [--host H]]' },
  score: { run: async (c: Config) => (await import('./commands/score.js')).runScore(c), summary: 'Score JSON Lines of {"query","document"}: one {"score","logit","truncated"} line per input, in order.', usage: 'rerank-mcp score [--model <dir|owner/name>] [--input FILE]' },
  tokenize: { run: async (c: Config) => (await import('./commands/tokenize.js')).runTokenize(c), summary: 'Tokenize JSON Lines of {"query","document"}: one {"input_ids","token_type_ids","truncated"} line per input.', usage: 'rerank-mcp tokenize [--model <dir|owner/name>] [--input FILE]' },
} as const;

/** Over stdio, the shim relays to the shared daemon; if that cannot be used, this process serves, as --standalone does. */
async function runServeCommand(config: Config, args: string[] = []): Promise<number> {
  if (!config.http && !config.standalone) {
    const { runShim } = await import('./transports/daemon-shim.js');
    const { fallback } = await runShim({ config, serveArgs: args, cliPath: fileURLToPath(import.meta.url) });
    log(`daemon unavailable: ${fallback}; serving in this process (standalone)`);
  }
  return (await import('./commands/serve.js')).runServe(config);
}

/** What --print-config says about the stdio mode. */
async function stdioMode(config: Config): Promise<Record<string, unknown>> {
  if (config.http) return {};
  if (config.standalone) return { stdio: 'standalone (--standalone or RERANK_STANDALONE)' };
  const { daemonPlan } = await import('./transports/daemon-shim.js');
  const { prepareDaemonDir } = await import('./transports/daemon-common.js');
  try {
    const { paths } = daemonPlan(config);
    prepareDaemonDir(paths.dir);
    return { stdio: 'shared daemon', 'daemon-socket': paths.socket, 'daemon-log': paths.log };
  } catch (err) {
    return { stdio: `standalone: ${(err as Error).message}` };
  }
}

type CommandName = keyof typeof COMMANDS;

/** Commands with subcommands or flags of their own: they take none of the model/server options. */
const OWN_FLAGS: Record<string, (argv: string[]) => Promise<number>> = {
  feedback: async (a) => (await import('./commands/feedback.js')).runFeedback(a),
  'client-config': async (a) => (await import('./commands/client-config.js')).runClientConfig(a),
  finetune: async (a) => (await import('./commands/finetune.js')).runFinetune(a),
  rollback: async (a) => (await import('./commands/rollback.js')).runRollback(a),
  daemon: async (a) => (await import('./commands/daemon.js')).runDaemon(a),
};

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
  daemon <status|stop>
             the shared daemon that stdio clients use (one per configuration)

Run rerank-mcp <command> --help for its options.
`;

async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${PACKAGE_VERSION}\n`);
    return 0;
  }
  if (first !== undefined && Object.hasOwn(OWN_FLAGS, first)) return OWN_FLAGS[first](argv.slice(1));
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
  setLogFormat(config.logFormat);
  if (config.help) {
    process.stdout.write(helpFor(name, command.summary, command.usage));
    return 0;
  }
  if (config.printConfig) {
    process.stdout.write(JSON.stringify(printableConfig(config, name, name === 'serve' ? await stdioMode(config) : {}), null, 2) + '\n');
    return 0;
  }
  return name === 'serve' ? runServeCommand(config, rest) : command.run(config);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (err) => {
    // Expected failures (bad flags, missing files) are one line; RERANK_DEBUG=1 adds the stack of anything else.
    const { ModelLoadError } = await import('./model/model-dir.js');
    const expected = err instanceof ConfigError || err instanceof ModelLoadError;
    log(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (!expected && process.env.RERANK_DEBUG) log((err as Error).stack ?? '');
    process.exit(2);
  },
);
