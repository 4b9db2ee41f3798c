/**
 * Every setting of rerank-mcp, from flags first, then environment variables, then defaults.
 * The same table drives parsing, validation and the help text, so they cannot drift apart.
 */
import { parseArgs } from 'node:util';
import type { Variant } from './model/model-dir.js';
import type { Activation } from './model/activation.js';
import type { PromptTemplateSetting } from './tokenizer/prompt-template.js';
import { existsSync } from 'node:fs';
// Only light modules: the stdio shim parses its options with this file and must not load the engine.
import { DEFAULT_MODEL, DEFAULT_MODEL_MIRROR, ENGINE_OPTION_DEFAULTS as DEFAULT_ENGINE_OPTIONS } from './defaults.js';
import { hubCacheDir } from './hub/hub-env.js';
import { defaultDbPath, maskUrl, resolveDbPath } from './db-location.js';

export interface Config {
  model: string | undefined;
  variant: Variant;
  maxLength: number | undefined;
  activation: Activation | undefined;
  promptTemplate: PromptTemplateSetting;
  prefixReuse: 'auto' | 'off';
  instruction: string | undefined;
  threads: number | undefined;
  maxBatchTokens: number;
  batchWaitMs: number;
  chunkOverlap: number;
  maxCallTokens: number;
  maxCallMs: number;
  cacheSize: number;
  http: boolean;
  stateless: boolean;
  host: string;
  port: number;
  token: string | undefined;
  maxBodyMb: number;
  sessionIdleSeconds: number;
  maxSessions: number;
  maxConnections: number;
  allowedHosts: string | undefined;
  corsOrigins: string | undefined;
  rerankLogMaxMb: number;
  printConfig: boolean;
  input: string | undefined;
  db: string | undefined;
  noWatch: boolean;
  rerankLogMaxCalls: number;
  rerankLogMaxDays: number;
  batchSize: number;
  standalone: boolean;
  daemonIdleSeconds: number;
  metricsPort: number | undefined;
  logFormat: 'text' | 'json';
  traceDocuments: boolean;
  help: boolean;
}

type Kind = 'string' | 'int' | 'boolean' | { oneOf: readonly string[] };

interface OptionSpec {
  key: keyof Config;
  flag: string;
  env?: string;
  kind: Kind;
  help: string;
  default?: string | number | boolean;
  /** Subcommands that take the option; all when absent. */
  only?: readonly string[];
}

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'model', flag: 'model', env: 'RERANK_MODEL', kind: 'string', help: `local model directory (Hugging Face layout: config.json, tokenizer.json, onnx/model.onnx) or Hugging Face repo id owner/name[@revision], downloaded into ${hubCacheDir()} (default ${DEFAULT_MODEL}, or its ONNX mirror ${DEFAULT_MODEL_MIRROR})` },
  { key: 'variant', flag: 'variant', env: 'RERANK_VARIANT', kind: { oneOf: ['fp32', 'int8'] }, default: 'fp32', help: 'ONNX file: fp32 = model.onnx (model_fused.onnx instead when finetune wrote one: the same logits, faster), int8 = model_quantized.onnx' },
  { key: 'maxLength', flag: 'max-length', env: 'RERANK_MAX_LENGTH', kind: 'int', help: "tokens per pair, up to the model's maximum (default: tokenizer_config model_max_length, capped at max_position_embeddings, less padding_idx + 1 for RoBERTa-style models, and at 4096 for long-context models)" },
  { key: 'promptTemplate', flag: 'prompt-template', env: 'RERANK_PROMPT_TEMPLATE', kind: { oneOf: ['auto', 'none', 'qwen3-reranker', 'mxbai-rerank-v2'] }, default: 'auto', help: "prompt the pairs are put in: auto = the one config.json's reranker needs (Qwen3 seq-cls: qwen3-reranker, Qwen2 seq-cls: mxbai-rerank-v2, others none); none = raw pairs" },
  { key: 'prefixReuse', flag: 'prefix-reuse', env: 'RERANK_PREFIX_REUSE', kind: { oneOf: ['auto', 'off'] }, default: 'auto', help: 'decoder rerankers: auto = when onnx/model_past.onnx lies beside model.onnx (with --variant int8: onnx/model_past_quantized.onnx; finetune writes both), run the tokens all documents of a call share (prompt, instruction, query) once; off = always the plain graph' },
  { key: 'activation', flag: 'activation', env: 'RERANK_ACTIVATION', kind: { oneOf: ['identity', 'sigmoid', 'tanh'] }, help: "force the score activation (default: config.json's sentence_transformers.activation_fn, else sigmoid)" },
  { key: 'threads', flag: 'threads', env: 'RERANK_THREADS', kind: 'int', help: 'ONNX Runtime intra-op threads (default: available cores)' },
  { key: 'maxBatchTokens', flag: 'max-batch-tokens', env: 'RERANK_MAX_BATCH_TOKENS', kind: 'int', default: DEFAULT_ENGINE_OPTIONS.maxBatchTokens, help: 'token budget of one inference batch (pairs x longest pair)' },
  { key: 'batchWaitMs', flag: 'batch-wait-ms', env: 'RERANK_BATCH_WAIT_MS', kind: 'int', default: DEFAULT_ENGINE_OPTIONS.batchWaitMs, help: 'how long an idle batcher waits for concurrent calls to share a batch' },
  { key: 'chunkOverlap', flag: 'chunk-overlap', env: 'RERANK_CHUNK_OVERLAP', kind: 'int', default: DEFAULT_ENGINE_OPTIONS.chunkOverlap, help: 'tokens shared by neighbouring windows when rerank chunks a long document' },
  { key: 'maxCallTokens', flag: 'max-call-tokens', env: 'RERANK_MAX_CALL_TOKENS', kind: 'int', default: DEFAULT_ENGINE_OPTIONS.maxCallTokens, only: ['serve'], help: 'most tokens one rerank or score_pair call may send to the model, after truncation or chunking; larger calls are refused (0: no limit)' },
  { key: 'maxCallMs', flag: 'max-call-ms', env: 'RERANK_MAX_CALL_MS', kind: 'int', default: 0, only: ['serve'], help: 'answer every rerank call within this many milliseconds, with the documents not scored by then flagged scored: false and complete: false (a call\'s deadline_ms may ask for less; 0: no limit)' },
  { key: 'cacheSize', flag: 'cache-size', env: 'RERANK_CACHE_SIZE', kind: 'int', default: 20000, only: ['serve'], help: 'scores kept in the in-memory LRU cache (0 turns it off)' },
  { key: 'http', flag: 'http', env: 'RERANK_HTTP', kind: 'boolean', default: false, only: ['serve'], help: 'serve Streamable HTTP on /mcp instead of stdio' },
  { key: 'stateless', flag: 'stateless', env: 'RERANK_STATELESS', kind: 'boolean', default: false, only: ['serve'], help: 'HTTP without sessions: every POST is answered on its own, so replicas behind a load balancer need no stickiness (GET /mcp gets 405)' },
  { key: 'host', flag: 'host', env: 'RERANK_HOST', kind: 'string', default: '127.0.0.1', only: ['serve'], help: 'HTTP bind address (a non-loopback address needs RERANK_MCP_TOKEN)' },
  { key: 'port', flag: 'port', env: 'RERANK_PORT', kind: 'int', default: 8765, only: ['serve'], help: 'HTTP port (0 picks a free one)' },
  { key: 'token', flag: 'token', env: 'RERANK_MCP_TOKEN', kind: 'string', only: ['serve'], help: 'bearer token HTTP clients must send (prefer the env var: flags show in ps)' },
  { key: 'noWatch', flag: 'no-watch', env: 'RERANK_NO_WATCH', kind: 'boolean', default: false, only: ['serve'], help: 'do not reload the model when its files change (SIGHUP still reloads)' },
  { key: 'db', flag: 'db', env: 'RERANK_FEEDBACK_DB', kind: 'string', only: ['serve'], help: `feedback database (default ${defaultDbPath()}); keep it outside any project folder` },
  { key: 'rerankLogMaxCalls', flag: 'rerank-log-max-calls', env: 'RERANK_LOG_MAX_CALLS', kind: 'int', default: 10000, only: ['serve'], help: 'rerank calls kept for labeling by rerank_id (0: no log, no rerank_id)' },
  { key: 'rerankLogMaxDays', flag: 'rerank-log-max-days', env: 'RERANK_LOG_MAX_DAYS', kind: 'int', default: 30, only: ['serve'], help: 'days a logged rerank call stays labelable' },
  // Bounds and privacy of a shared server (HTTP sessions, hosts, the rerank log's size).
  { key: 'rerankLogMaxMb', flag: 'rerank-log-max-mb', env: 'RERANK_LOG_MAX_MB', kind: 'int', default: 100, only: ['serve'], help: 'MiB of query and candidate text the rerank log keeps, the oldest calls going first (0: no log)' },
  { key: 'maxBodyMb', flag: 'max-body-mb', env: 'RERANK_MAX_BODY_MB', kind: 'int', default: 128, only: ['serve'], help: 'largest request in MiB: an HTTP body (larger ones get 413) or a stdio message (larger ones are refused with an error); the default fits the largest call the tools accept in ASCII text' },
  { key: 'sessionIdleSeconds', flag: 'session-idle-seconds', env: 'RERANK_SESSION_IDLE_SECONDS', kind: 'int', default: 1800, only: ['serve'], help: 'close an HTTP session after this long without a request' },
  { key: 'maxSessions', flag: 'max-sessions', env: 'RERANK_MAX_SESSIONS', kind: 'int', default: 100, only: ['serve'], help: 'HTTP sessions open at once; at the cap a new client closes the least recently used idle one, and gets 503 with Retry-After only when every session has a call in flight' },
  { key: 'maxConnections', flag: 'max-connections', env: 'RERANK_MAX_CONNECTIONS', kind: 'int', default: 0, only: ['serve'], help: 'HTTP connections open at once; at the cap a new one closes the connection idle the longest (0: the open-file limit less a reserve for model and database files, at most 4096)' },
  { key: 'allowedHosts', flag: 'allowed-hosts', env: 'RERANK_ALLOWED_HOSTS', kind: 'string', only: ['serve'], help: 'comma-separated host names (with or without :port) clients may use in Host and Origin, besides loopback and the bind address' },
  { key: 'corsOrigins', flag: 'cors-origins', env: 'RERANK_CORS_ORIGINS', kind: 'string', only: ['serve'], help: 'comma-separated origins (e.g. https://app.example.com,http://localhost:3000) whose browser pages may call the REST routes and /mcp: CORS headers and preflights for them, still with the token; off by default' },
  { key: 'standalone', flag: 'standalone', env: 'RERANK_STANDALONE', kind: 'boolean', default: false, only: ['serve'], help: 'over stdio, serve in this process instead of through the shared per-user daemon (see docs/daemon.md; the daemon directory is RERANK_DAEMON_DIR, else $XDG_RUNTIME_DIR/rerank-mcp)' },
  { key: 'daemonIdleSeconds', flag: 'daemon-idle-seconds', env: 'RERANK_DAEMON_IDLE_SECONDS', kind: 'int', default: 600, only: ['serve'], help: 'a shared daemon this process starts exits after this long with no client connected' },
  // Operations (docs/operations.md): metrics, log format, traces (traces are switched on by the standard OTEL_EXPORTER_OTLP_ENDPOINT).
  { key: 'metricsPort', flag: 'metrics-port', env: 'RERANK_METRICS_PORT', kind: 'int', only: ['serve'], help: 'serve Prometheus metrics (GET /metrics, TEI\'s te_* names plus rerank_mcp_*) on this port, bound to --host, without a token: keep it where only the scraper reaches (default: no metrics)' },
  { key: 'logFormat', flag: 'log-format', env: 'RERANK_LOG_FORMAT', kind: { oneOf: ['text', 'json'] }, default: 'text', help: 'stderr log lines: text, or json (one object per line: time, level, msg, request_id, client, method, duration_ms, tokens, outcome)' },
  { key: 'traceDocuments', flag: 'trace-documents', env: 'RERANK_TRACE_DOCUMENTS', kind: 'boolean', default: false, only: ['serve'], help: 'with OTEL_EXPORTER_OTLP_ENDPOINT set, put document texts into rerank spans (reranker.input_documents.N.document.content); the query is always there' },
  { key: 'printConfig', flag: 'print-config', kind: 'boolean', default: false, help: 'print the effective configuration (secrets masked) and exit' },
  { key: 'input', flag: 'input', kind: 'string', only: ['score', 'tokenize'], help: 'JSON Lines file of {"query","document"} (default: stdin)' },
  { key: 'instruction', flag: 'instruction', kind: 'string', only: ['score', 'tokenize'], help: "task instruction for the prompt template (default: the model card's; refused with --prompt-template none)" },
  { key: 'batchSize', flag: 'batch-size', kind: 'int', default: 16, only: ['score'], help: "pairs per batch in input order, as sentence-transformers' predict batches (0: length-sorted batches under --max-batch-tokens)" },
  { key: 'help', flag: 'help', kind: 'boolean', default: false, help: 'show this help' },
];

export class ConfigError extends Error {}

function convert(spec: OptionSpec, raw: string | boolean, origin: string): unknown {
  const kind = spec.kind;
  if (kind === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off|)$/i.test(raw)) return false;
    throw new ConfigError(`${origin}: expected true or false, got "${raw}"`);
  }
  const value = String(raw);
  if (kind === 'int') {
    if (!/^\d+$/.test(value)) throw new ConfigError(`${origin}: expected a whole number, got "${value}"`);
    return Number(value);
  }
  if (typeof kind === 'object' && !kind.oneOf.includes(value)) {
    throw new ConfigError(`${origin}: expected one of ${kind.oneOf.join(', ')}, got "${value}"`);
  }
  return value;
}

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv, command: string): Config {
  const usable = OPTIONS.filter((o) => !o.only || o.only.includes(command));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(usable.map((o) => [o.flag, { type: o.kind === 'boolean' ? 'boolean' : 'string' }])),
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    // parseArgs explains some errors over several lines; users get one.
    throw new ConfigError(`${(err as Error).message.trim().replace(/\s*\n\s*/g, ' ')} (see rerank-mcp ${command} --help)`);
  }
  const config: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    const fromFlag = usable.includes(spec) ? values[spec.flag] : undefined;
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (fromFlag !== undefined) config[spec.key] = convert(spec, fromFlag, `--${spec.flag}`);
    else if (fromEnv !== undefined && fromEnv !== '') config[spec.key] = convert(spec, fromEnv, spec.env!);
    else config[spec.key] = spec.default;
  }
  const result = config as unknown as Config;
  if (result.maxBatchTokens < 1) throw new ConfigError('--max-batch-tokens must be at least 1');
  if (result.threads !== undefined && result.threads < 1) throw new ConfigError('--threads must be at least 1');
  validateServeLimits(result);
  return result;
}

/** Values that would leave the server up but unusable are refused before it starts. */
function validateServeLimits(c: Config): void {
  const atLeast = (value: number, min: number, flag: string, why: string) => {
    if (value < min) throw new ConfigError(`--${flag} must be at least ${min} (${why}), got ${value}`);
  };
  if (c.port > 65535) throw new ConfigError(`--port must be from 0 to 65535 (0 picks a free port), got ${c.port}`);
  if (c.metricsPort !== undefined && c.metricsPort > 65535) throw new ConfigError(`--metrics-port must be from 0 to 65535 (0 picks a free port), got ${c.metricsPort}`);
  if (c.http && c.metricsPort !== undefined && c.metricsPort !== 0 && c.metricsPort === c.port) throw new ConfigError(`--metrics-port ${c.metricsPort} is the MCP port (--port): metrics need a port of their own`);
  atLeast(c.maxBodyMb, 1, 'max-body-mb', 'a smaller limit refuses every request');
  atLeast(c.sessionIdleSeconds, 1, 'session-idle-seconds', '0 would close every HTTP session at once');
  atLeast(c.maxSessions, 1, 'max-sessions', '0 would refuse every client');
  if (c.stateless && !c.http) throw new ConfigError('--stateless applies to the HTTP transport: add --http (env RERANK_HTTP=1)');
  atLeast(c.daemonIdleSeconds, 1, 'daemon-idle-seconds', '0 would stop the daemon before a client could connect');
  if (c.host.trim() === '') throw new ConfigError('--host must not be empty (use 127.0.0.1, or 0.0.0.0 with a token)');
  if (c.allowedHosts !== undefined) allowedHostList(c.allowedHosts);
  if (c.corsOrigins !== undefined) corsOriginList(c.corsOrigins);
}

/** RERANK_CORS_ORIGINS as origins, lower case, no trailing slash; "*" is refused: any site could then drive a server on loopback. */
export function corsOriginList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((o) => o.trim().toLowerCase().replace(/\/+$/, ''))
    .filter((o) => o !== '')
    .map((o) => {
      if (!/^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:\d{1,5})?$/.test(o)) {
        throw new ConfigError(`--cors-origins: "${o}" is not an origin (expected scheme://host[:port], e.g. https://app.example.com or http://localhost:3000; "*" is not accepted)`);
      }
      return o;
    });
}

/** RERANK_ALLOWED_HOSTS as host names, lower case, ports dropped ("box.lan:8765" → "box.lan"). */
export function allowedHostList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '')
    .map((h) => {
      const match = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::\d{1,5})?$/.exec(h);
      if (!match) throw new ConfigError(`--allowed-hosts: "${h}" is not a host name (expected e.g. box.lan, box.lan:8765 or [fd00::1])`);
      return match[1];
    });
}

const SECRET_KEYS: readonly (keyof Config)[] = ['token'];

/** The effective settings of `command`, by flag name, with secrets masked, for --print-config. */
export function printableConfig(config: Config, command: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    if ((spec.only && !spec.only.includes(command)) || spec.key === 'help' || spec.key === 'printConfig') continue;
    const value = config[spec.key];
    out[spec.flag] = SECRET_KEYS.includes(spec.key) && value !== undefined ? '***' : value ?? null;
  }
  // What will actually be used, not just what was given: the default model, where a repo model is cached, the database file.
  const local = config.model !== undefined && existsSync(config.model);
  out.model = config.model ?? DEFAULT_MODEL;
  out['model-source'] = local
    ? 'local directory'
    : config.model === undefined
      ? `default repo (its ONNX mirror ${DEFAULT_MODEL_MIRROR} when it has no ${config.variant === 'int8' ? 'onnx/model_quantized.onnx' : 'onnx/model.onnx'})`
      : 'Hugging Face repo id';
  if (!local) out['model-cache'] = hubCacheDir();
  if ('db' in out) out.db = maskUrl(resolveDbPath(config.db));
  return { command, ...out, ...extra };
}

export function helpFor(command: string, summary: string, usage: string): string {
  const lines = OPTIONS.filter((o) => !o.only || o.only.includes(command)).map((o) => {
    const arg = o.kind === 'boolean' ? '' : typeof o.kind === 'object' ? ` <${o.kind.oneOf.join('|')}>` : o.kind === 'int' ? ' <n>' : ' <value>';
    const extra = [o.env ? `env ${o.env}` : '', o.default !== undefined && o.kind !== 'boolean' ? `default ${o.default}` : ''].filter(Boolean).join(', ');
    return `  --${o.flag}${arg}\n      ${o.help}${extra ? ` (${extra})` : ''}`;
  });
  return `${summary}\n\nUsage: ${usage}\n\nOptions:\n${lines.join('\n')}\n`;
}
