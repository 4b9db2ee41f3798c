/**
 * Every log line goes to stderr: in stdio mode stdout carries only JSON-RPC.
 *
 * Two formats: text (the default, for people) and json (--log-format json, RERANK_LOG_FORMAT),
 * one JSON object per line for log shippers. A line logged while a call is being served carries
 * that call's fields (request_id, client, method, transport) in both: src/observability runs each
 * call inside logScope, so code deep in the stack (the feedback store, the REST error path)
 * needs no request id passed down to it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

let format: LogFormat = process.env.RERANK_LOG_FORMAT === 'json' ? 'json' : 'text';
const scope = new AsyncLocalStorage<LogFields>();

export function setLogFormat(value: LogFormat): void {
  format = value;
}

export function logFormat(): LogFormat {
  return format;
}

/** Runs `work` with `fields` attached to every line it logs, however deep. */
export function logScope<T>(fields: LogFields, work: () => T): T {
  return scope.run(fields, work);
}

/** The level a message's own wording gives it ("error: …", "warning: …"), so existing call sites need no change. */
function levelOf(message: string): LogLevel {
  if (/^(error|[A-Z]+ error|protocol error)\b/i.test(message)) return 'error';
  if (/^warning\b/i.test(message)) return 'warn';
  return 'info';
}

export function log(message: string, fields?: LogFields, level?: LogLevel): void {
  const context = scope.getStore();
  if (format === 'json') {
    const line = { time: new Date().toISOString(), level: level ?? levelOf(message), msg: message, ...context, ...fields };
    process.stderr.write(`${JSON.stringify(line)}\n`);
    return;
  }
  const id = (fields?.request_id ?? context?.request_id) as string | undefined;
  process.stderr.write(`[rerank-mcp] ${message}${id ? ` [request ${id}]` : ''}\n`);
}
