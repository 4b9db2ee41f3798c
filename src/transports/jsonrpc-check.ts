/**
 * What the SDK would drop in silence, answered instead. The SDK validates each incoming message
 * against its schema and, when that fails, reports a multi-line zod dump to `onerror` and sends
 * nothing, so a client whose id it cannot represent (12345678901234567890 parses to a different
 * number, 1e400 to Infinity, 1.5 is no integer) waits forever. Every message is checked here
 * first: a request with an id that cannot be echoed gets an Invalid Request with id null (the
 * JSON-RPC rule for an id that cannot be determined), anything else the SDK would not accept is
 * answered (requests) or logged in one line (notifications, responses).
 *
 * A request reusing the id of one still in flight in the same session is refused too: the SDK
 * keys its cancellation and progress bookkeeping on the id, so the second would take over the
 * first one's abort controller and `notifications/cancelled` would stop the wrong call.
 */
import {
  JSONRPCErrorResponseSchema,
  JSONRPCMessageSchema,
  JSONRPCNotificationSchema,
  JSONRPCRequestSchema,
  JSONRPCResultResponseSchema,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;

export interface ErrorReply {
  jsonrpc: '2.0';
  id: string | number | null;
  error: { code: number; message: string };
}

export type Checked =
  | { ok: true; message: JSONRPCMessage }
  /** `reply` is undefined when the message was a notification or a response: those are only logged. */
  | { ok: false; reply: ErrorReply | undefined; log: string };

type RequestId = string | number;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why `id` cannot be a JSON-RPC id in MCP, or undefined when it can (a string or a safe integer). */
export function idProblem(id: unknown): string | undefined {
  if (typeof id === 'string') return undefined;
  if (typeof id === 'number') {
    if (!Number.isFinite(id)) return 'the id is a number out of range';
    if (!Number.isInteger(id)) return `the id ${id} is not an integer`;
    if (!Number.isSafeInteger(id)) return 'the id is an integer beyond 2^53 that cannot be represented exactly (send it as a string)';
    return undefined;
  }
  if (id === null) return 'the id is null, which MCP does not allow';
  return `the id is a ${Array.isArray(id) ? 'array' : typeof id}, not a string or an integer`;
}

const describe = (m: Record<string, unknown>): string => (typeof m.method === 'string' ? m.method.slice(0, 60) : 'message');

const errorReply = (id: RequestId | null, code: number, message: string): ErrorReply => ({ jsonrpc: '2.0', id, error: { code, message } });

/** The first problem zod found, in one line, checked against the shape the message claims to have. */
function schemaProblem(value: Record<string, unknown>): string | undefined {
  if (JSONRPCMessageSchema.safeParse(value).success) return undefined;
  // The union's own error says only "Invalid input"; the schema of the intended kind says what is wrong.
  const schema = 'method' in value ? ('id' in value ? JSONRPCRequestSchema : JSONRPCNotificationSchema) : 'error' in value ? JSONRPCErrorResponseSchema : JSONRPCResultResponseSchema;
  const parsed = schema.safeParse(value);
  if (parsed.success) return 'not a JSON-RPC 2.0 message';
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  return `${issue?.message ?? 'not a JSON-RPC 2.0 message'}${where}`.replace(/\s+/g, ' ').slice(0, 200);
}

/** Checks one parsed message (not a batch array). */
export function checkMessage(value: unknown): Checked {
  if (!isRecord(value)) {
    const what = Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value;
    return { ok: false, reply: errorReply(null, INVALID_REQUEST, `Invalid Request: a JSON-RPC message is an object, got ${what}`), log: `refused a message that is ${what}, not a JSON-RPC object` };
  }
  const hasId = 'id' in value;
  const isCall = 'method' in value;
  if (hasId) {
    const problem = idProblem(value.id);
    if (problem) {
      if (!isCall) return { ok: false, reply: undefined, log: `dropped a JSON-RPC response: ${problem}` };
      return {
        ok: false,
        reply: errorReply(null, INVALID_REQUEST, `Invalid Request: ${problem}; use a string or an integer up to 2^53 as the id`),
        log: `refused a ${describe(value)} request with id null: ${problem}`,
      };
    }
  }
  const problem = schemaProblem(value);
  if (problem === undefined) return { ok: true, message: value as JSONRPCMessage };
  if (isCall && hasId) {
    return { ok: false, reply: errorReply(value.id as RequestId, INVALID_REQUEST, `Invalid Request: ${problem}`), log: `refused a ${describe(value)} request: ${problem}` };
  }
  if (isCall) return { ok: false, reply: undefined, log: `dropped a ${describe(value)} notification: ${problem}` };
  if (hasId) return { ok: false, reply: undefined, log: `dropped a JSON-RPC response: ${problem}` };
  return { ok: false, reply: errorReply(null, INVALID_REQUEST, `Invalid Request: ${problem}`), log: `refused a message that is neither a request, a notification nor a response: ${problem}` };
}

/** Parses one line or body text and checks it; a parse failure is answered with id null. */
export function parseError(err: unknown): { reply: ErrorReply; log: string } {
  const reason = (err as Error).message.replace(/\s+/g, ' ').trim().slice(0, 200);
  return { reply: errorReply(null, PARSE_ERROR, `Parse error: ${reason}`), log: `refused a line that is not JSON: ${reason}` };
}

export const isRequest = (m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId; method: string } => 'method' in m && 'id' in m;
export const isResponse = (m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } => !('method' in m) && 'id' in m;

/**
 * The ids of a session's requests that have not been answered yet, so that a second request with
 * the same id can be refused while the first runs.
 */
export class InFlightIds {
  private readonly ids = new Set<string>();

  private static key(id: RequestId): string {
    return `${typeof id}:${id}`;
  }

  has(id: RequestId): boolean {
    return this.ids.has(InFlightIds.key(id));
  }

  add(id: RequestId): void {
    this.ids.add(InFlightIds.key(id));
  }

  delete(id: RequestId): void {
    this.ids.delete(InFlightIds.key(id));
  }

  get size(): number {
    return this.ids.size;
  }
}

export function duplicateReply(id: RequestId, method: string): { reply: ErrorReply; log: string } {
  const shown = JSON.stringify(id).slice(0, 80);
  return {
    reply: errorReply(id, INVALID_REQUEST, `Invalid Request: id ${shown} is already used by a request still in flight in this session; use a new id for each request`),
    log: `refused a ${method.slice(0, 60)} request: id ${shown} is already in flight in this session`,
  };
}
