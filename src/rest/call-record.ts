/**
 * The REST face's side of a call record (src/observability): the request id taken from
 * x-request-id (or made) and echoed at once, TEI's timing headers on the answer, and the HTTP
 * status mapped to TEI's error kinds. Kept here so the routes only call in.
 */
import type { Request, Response } from 'express';
import { beginCall, type CallRecord, type FailureKind } from '../observability/index.js';

export type { CallRecord };

/** A route handler run with its call record, every line it logs carrying the request id. */
export function withCallRecord(client: (req: Request) => string | undefined, handler: (req: Request, res: Response, record: CallRecord) => Promise<void>) {
  return (req: Request, res: Response): Promise<void> => {
    const record = beginRestCall(req, res, client(req));
    return record.run(() => handler(req, res, record));
  };
}

export function beginRestCall(req: Request, res: Response, client: string | undefined): CallRecord {
  const header = (name: string) => {
    const value = req.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  const route = req.route?.path ?? req.path;
  const record = beginCall({
    face: 'rest',
    transport: 'http',
    method: route,
    requestId: header('x-request-id'),
    client,
    traceparent: header('traceparent'),
    tracestate: header('tracestate'),
    attributes: { 'http.request.method': req.method, 'http.route': route, 'url.path': req.path, ...(client ? { 'user_agent.original': client } : {}) },
  });
  res.setHeader('x-request-id', record.requestId);
  return record;
}

/** Sets TEI's timing headers; call just before the answer is sent. */
export function setTimingHeaders(res: Response, record: CallRecord): void {
  if (!res.headersSent) res.set(record.timingHeaders());
}

/** TEI's error kinds by status: 4xx the caller's (429 overloaded), 503 the replica's state, other 5xx the backend's. */
export function failureOf(status: number): FailureKind {
  if (status === 429) return 'overloaded';
  if (status === 503) return 'unhealthy';
  if (status >= 500) return 'backend';
  return 'validation';
}
