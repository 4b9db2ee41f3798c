/**
 * The REST face: the rerank API that RAG tools without MCP speak (Open WebUI, Dify, LiteLLM,
 * LangChain/LlamaIndex rerankers, the AI SDK), on the MCP server's port and token. Each route
 * validates with the same limits and runs the same call (src/api) as the MCP tools: same engine
 * queue (so a small call is not held behind a large one), same rerank log (its id is the
 * rerank_id that /v1/feedback and the MCP feedback tool accept, sent in X-Rerank-Id on every
 * rerank route), cancelled when the client hangs up.
 *
 * Each client family reads errors in its own provider's shape, so each gets that shape (one
 * line that says what to fix): Cohere/Jina routes {message, error: {message}} (the SDKs read
 * the top-level message, older clients of this server error.message), TEI's {error, error_type}.
 * See docs/rest.md.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { ZodError, type ZodType } from 'zod';
import type { ServerContext } from '../api/context.js';
import { CallTooLarge, UsageError, type CallContext } from '../api/call.js';
import { runRerank, type RerankOutcome } from '../api/rerank.js';
import { runFeedback } from '../api/feedback.js';
import { feedbackInput, MAX_DOCUMENTS } from '../api/schemas.js';
import type { ScoringEngine } from '../engine/scoring-engine.js';
import { defaultPoolSize } from '../engine/tokenizer-pool.js';
import { FeedbackError } from '../feedback/feedback-store.js';
import { log } from '../log.js';
import { PACKAGE_VERSION } from '../version.js';
import { sendJson } from './send-json.js';
import { cohereRerankRequest, DocumentProblem, rankedText, teiRerankRequest, type CohereRerankRequest } from './schemas.js';
import { failureOf, setTimingHeaders, withCallRecord, type CallRecord } from './call-record.js';

export interface RestOptions {
  /** The transport's token check (the same as /mcp's); absent when no token is configured. */
  authorized?: (req: Request) => boolean;
  maxBodyBytes: number;
  /** REST calls running at once; one more gets 429 with Retry-After. */
  maxConcurrent: number;
  /** The transport's JSON body parser (large bodies parsed off the event loop), shared with /mcp. */
  parseJson: RequestHandler;
}

type Family = 'cohere' | 'tei';
interface Route {
  method: 'GET' | 'POST';
  family: Family;
}

/** Routes by path; /v1/feedback is ours, answered in the Cohere family's shape like its neighbours. */
const ROUTES = new Map<string, Route>([
  ['/v1/rerank', { method: 'POST', family: 'cohere' }],
  ['/v2/rerank', { method: 'POST', family: 'cohere' }],
  ['/v1/feedback', { method: 'POST', family: 'cohere' }],
  ['/rerank', { method: 'POST', family: 'tei' }],
  ['/info', { method: 'GET', family: 'tei' }],
]);
export const REST_PATHS = [...ROUTES.keys()];

/** The response header that carries a rerank call's rerank_id, on every rerank route (TEI's body has no room for it). */
export const RERANK_ID_HEADER = 'X-Rerank-Id';

const JSON_TYPES = ['application/json', 'application/*+json'];

/** Express matches paths case-insensitively and ignores one trailing slash; so do these lookups. */
const normalPath = (path: string) => (path.length > 1 ? path.replace(/\/$/, '') : path).toLowerCase();
const routeOf = (req: Request): Route | undefined => ROUTES.get(normalPath(req.path));

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** `null` in a top-level field is taken as absent: Dify sends top_n: null, langchain-cohere max_tokens_per_doc: null, the Python SDKs null for every explicit None. */
function dropNulls(body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  for (const [key, value] of Object.entries(body)) if (value === null) delete (body as Record<string, unknown>)[key];
}

export function restRoutes(ctx: ServerContext, options: RestOptions): Router {
  const router = Router();
  let running = 0;
  const json = options.parseJson;

  // Token, method and content type, then the body: each refused in the route family's shape.
  router.use((req: Request, res: Response, next: NextFunction) => {
    const route = routeOf(req);
    if (!route) return next();
    if (options.authorized && !options.authorized(req)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="rerank-mcp"');
      sendError(req, res, new HttpError(401, 'missing or wrong bearer token (set Authorization: Bearer <RERANK_MCP_TOKEN>, the API key setting of most clients)'));
      return;
    }
    const path = req.originalUrl.split('?')[0];
    if (req.method !== route.method && !(req.method === 'HEAD' && route.method === 'GET')) {
      res.setHeader('Allow', route.method);
      sendError(req, res, new HttpError(405, `${req.method} is not allowed on ${path}: send ${route.method === 'POST' ? 'POST with a JSON body' : 'GET'}`));
      return;
    }
    if (route.method !== 'POST') return next();
    // req.is is null without a body (answered below as missing fields) and false for a body of another type.
    if (req.is(JSON_TYPES) === false) {
      sendError(req, res, new HttpError(415, `POST ${path}: the body is sent as ${req.headers['content-type'] ?? 'no Content-Type'}; send JSON with Content-Type: application/json`));
      return;
    }
    json(req, res, (err?: unknown) => {
      if (err) return next(err);
      dropNulls(req.body);
      next();
    });
  });

  /** Runs one call: validated input, the concurrency bound, cancellation when the client goes away. */
  const handle =
    <T>(schema: ZodType<T>, work: (input: T, call: CallContext, res: Response) => Promise<unknown>) =>
    withCallRecord(clientName, async (req: Request, res: Response, record: CallRecord): Promise<void> => {
      const controller = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) controller.abort();
      });
      try {
        const input = schema.parse(req.body ?? {});
        if (running >= options.maxConcurrent) {
          res.setHeader('Retry-After', '1');
          record.refusal = 'busy';
          throw new HttpError(429, `too many calls at once: ${options.maxConcurrent} are running (--max-sessions); retry shortly`);
        }
        running++;
        try {
          const body = await ctx.inFlight.track(() => work(input, { signal: controller.signal, source: clientName(req), record }, res));
          if (!controller.signal.aborted) {
            setTimingHeaders(res, record);
            await sendJson(res, body);
            record.end(undefined, { status: 200 });
          } else record.end('cancelled');
        } finally {
          running--;
        }
      } catch (err) {
        if (controller.signal.aborted) return record.end('cancelled');
        const refusal = classify(err, ctx);
        sendError(req, res, refusal);
        record.end(failureOf(refusal.status), { status: refusal.status, message: refusal.message });
      }
    });

  const labelHeader = (res: Response, outcome: RerankOutcome) => {
    if (outcome.rerankId !== undefined) res.setHeader(RERANK_ID_HEADER, outcome.rerankId);
  };

  const cohere = (version: '1' | '2') =>
    handle(cohereRerankRequest, async (input, call, res) => {
      call.record?.setAttributes({ 'reranker.top_k': input.top_n });
      let texts: string[];
      try {
        texts = input.documents.map((d, i) => rankedText(d, i, input.rank_fields));
      } catch (err) {
        throw err instanceof DocumentProblem ? new HttpError(400, err.message) : err;
      }
      const outcome = await runRerank(ctx, { query: input.query, documents: texts, instruction: input.instruction, deadlineMs: input.deadline_ms }, call);
      labelHeader(res, outcome);
      res.setHeader('X-Rerank-Complete', String(outcome.complete));
      // Jina's /v1 returns documents unless told not to; Cohere's v2 never does unless asked here.
      return cohereResponse(outcome, input, input.return_documents ?? version === '1', version, ctx.host.modelName);
    });
  router.post('/v1/rerank', cohere('1'));
  router.post('/v2/rerank', cohere('2'));

  router.post(
    '/rerank',
    handle(teiRerankRequest, async (input, call, res) => {
      const outcome = await runRerank(ctx, { query: input.query, documents: input.texts, instruction: input.instruction, deadlineMs: input.deadline_ms }, call);
      labelHeader(res, outcome);
      // TEI answers a bare array: whether a deadline cut the call short is in X-Rerank-Complete.
      res.setHeader('X-Rerank-Complete', String(outcome.complete));
      return outcome.ranked.map((r) => ({ index: r.index, score: r.scored === false ? null : input.raw_scores ? r.logit : sigmoid(r.logit), ...(r.scored === false ? { scored: false } : {}), ...(input.return_text ? { text: input.texts[r.index] } : {}) }));
    }),
  );

  router.get('/info', async (req: Request, res: Response) => {
    try {
      if (ctx.host.state !== 'ready') throw new HttpError(503, `the model is not loaded (${ctx.host.state}${ctx.host.error ? `: ${ctx.host.error}` : ''}); /readyz tells when it is`);
      res.json(await teiInfo(await ctx.host.ready(), ctx, options));
    } catch (err) {
      sendError(req, res, classify(err, ctx));
    }
  });

  router.post(
    '/v1/feedback',
    handle(feedbackInput, (input, call) => runFeedback(ctx, input, call)),
  );

  // Bodies over the limit or not JSON, on these paths, answered in the family's error shape.
  router.use((err: Error & { status?: number; type?: string; length?: number }, req: Request, res: Response, next: NextFunction) => {
    if (!routeOf(req)) return next(err);
    if (err.type === 'entity.too.large') {
      const message = `request body${err.length ? ` of ${(err.length / 1024 / 1024).toFixed(1)} MiB` : ''} is over the limit of ${(options.maxBodyBytes / 1024 / 1024).toFixed(0)} MiB (--max-body-mb, RERANK_MAX_BODY_MB)`;
      log(message);
      sendError(req, res, new HttpError(413, message));
    } else if (err.status === 415) sendError(req, res, new HttpError(415, `${err.message}: send JSON in UTF-8 with Content-Type: application/json`));
    else if (err.type === 'entity.parse.failed') sendError(req, res, new HttpError(400, `request body is not valid JSON: ${err.message}`));
    else if (err.status !== undefined && err.status < 500) sendError(req, res, new HttpError(err.status, err.message));
    else next(err);
  });
  return router;
}

/**
 * relevance_score is a probability whatever activation the server applies for the MCP tools:
 * the sigmoid of the logit for one-label models, and for two-label ones the logit is already
 * the log-odds of label 1, whose sigmoid is its softmax probability. Cohere/Jina clients apply
 * thresholds in [0, 1] on it.
 */
function cohereResponse(outcome: RerankOutcome, input: CohereRerankRequest, returnDocuments: boolean, version: '1' | '2', model: string) {
  const results = (input.top_n === undefined ? outcome.ranked : outcome.ranked.slice(0, input.top_n)).map((r) => {
    const doc = input.documents[r.index];
    // An object comes back as sent (Cohere v1 keeps every field); a string as {text}.
    return { index: r.index, relevance_score: r.scored === false ? null : sigmoid(r.logit), ...(r.scored === false ? { scored: false } : {}), ...(returnDocuments ? { document: typeof doc === 'string' ? { text: doc } : doc } : {}) };
  });
  return {
    id: outcome.rerankId ?? randomUUID(),
    results,
    complete: outcome.complete,
    model,
    usage: { total_tokens: outcome.tokens },
    meta: {
      api_version: { version },
      billed_units: { search_units: 1 },
      tokens: { input_tokens: outcome.tokens, output_tokens: 0 },
      truncated: outcome.ranked.filter((r) => r.truncated).length,
      labelable: outcome.rerankId !== undefined,
    },
  };
}

/** config.json's labels, read once per loaded model (off the event loop: the file may be on a slow volume). */
const labelsOf = new WeakMap<ScoringEngine, Promise<{ id2label: Record<string, string>; label2id: Record<string, number> }>>();

/** TEI's GET /info (router/src/lib.rs `Info`): Dify's TEI plugin reads model_type, max_input_length and max_client_batch_size before its first call. */
async function teiInfo(engine: ScoringEngine, ctx: ServerContext, options: RestOptions) {
  const model = engine.model;
  let labels = labelsOf.get(engine);
  if (!labels) {
    labels = readFile(model.files.configPath, 'utf8').then((raw) => {
      const config = JSON.parse(raw) as { id2label?: Record<string, string>; label2id?: Record<string, number> };
      const id2label = config.id2label ?? Object.fromEntries(Array.from({ length: model.numLabels }, (_, i) => [String(i), `LABEL_${i}`]));
      const label2id = config.label2id ?? Object.fromEntries(Object.entries(id2label).map(([id, label]) => [label, Number(id)]));
      return { id2label, label2id };
    });
    labelsOf.set(engine, labels);
  }
  return {
    model_id: ctx.host.modelName || model.files.root,
    model_sha: null,
    model_dtype: model.files.variant === 'int8' ? 'int8' : 'float32',
    // Always a reranker, also for two-label models (TEI would call those classifiers): /rerank scores them as rerankers, and Dify accepts only "reranker" here.
    model_type: { reranker: await labels },
    max_concurrent_requests: options.maxConcurrent,
    max_input_length: model.maxLength,
    max_batch_tokens: engine.options.maxBatchTokens,
    max_batch_requests: null,
    max_client_batch_size: MAX_DOCUMENTS,
    auto_truncate: true,
    tokenization_workers: defaultPoolSize(),
    version: PACKAGE_VERSION,
    sha: null,
    docker_label: null,
  };
}

function clientName(req: Request): string | undefined {
  const agent = req.headers['user-agent'];
  return typeof agent === 'string' && agent !== '' ? agent.slice(0, 200) : 'rest';
}

function classify(err: unknown, ctx: ServerContext): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ZodError) return new HttpError(400, err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  if (err instanceof UsageError || err instanceof FeedbackError) return new HttpError(400, err.message);
  if (err instanceof CallTooLarge) return new HttpError(413, err.message);
  const message = (err as Error).message ?? String(err);
  // The model cannot be had (download failed, loading) or the store cannot be reached: the replica is not serving; try another or later.
  if (ctx.host.state !== 'ready' || /^feedback database|cannot be reached|login refused|does not resolve/.test(message)) return new HttpError(503, message);
  log(`REST error: ${(err as Error).stack ?? message}`);
  return new HttpError(500, message);
}

/** TEI's ErrorType names (router/src/lib.rs) by status. */
function teiErrorType(status: number): string {
  if (status === 429) return 'Overloaded';
  if (status === 503) return 'Unhealthy';
  if (status >= 500) return 'Backend';
  return 'Validation';
}

function errorBody(family: Family, status: number, message: string): object {
  const line = message.replace(/\s*\n\s*/g, ' ');
  return family === 'tei' ? { error: line, error_type: teiErrorType(status) } : { message: line, error: { message: line } };
}

function sendError(req: Request, res: Response, err: HttpError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.status(err.status).json(errorBody(routeOf(req)?.family ?? 'cohere', err.status, err.message));
}

/**
 * A refusal by the transport's guards (Host/Origin) on a REST path, in that route's shape.
 * Returns false for other paths, which keep the transport's own.
 */
export function restRefusal(req: Request, res: Response, status: number, message: string): boolean {
  const route = routeOf(req);
  if (!route) return false;
  res.status(status).json(errorBody(route.family, status, message));
  return true;
}

/** Longest first, so /v1/v2/rerank is read as /v2/rerank under a base URL ending in /v1. */
const BY_LENGTH = [...ROUTES.keys()].sort((a, b) => b.length - a.length);

/**
 * Unknown paths: JSON, not Express's HTML page, and when the path ends in one of the routes,
 * which part of the client's base URL is too much (a base URL ending in /v1 makes Cohere's v2
 * client call /v1/v2/rerank).
 */
export function restNotFound(req: Request, res: Response): void {
  const path = req.originalUrl.split('?')[0];
  const normal = normalPath(path);
  const route = BY_LENGTH.find((r) => normal.endsWith(r) && normal !== r);
  const base = `${req.protocol}://${req.headers.host ?? '127.0.0.1'}`;
  const message = route
    ? `no route ${req.method} ${path}: the client's base URL should not end in ${path.slice(0, normal.length - route.length)} (drop it: this server answers ${route} at ${base}${route})`
    : `no route ${req.method} ${path}: this server answers POST /v1/rerank and /v2/rerank (Cohere, Jina), POST /rerank and GET /info (TEI), POST /v1/feedback, and MCP at /mcp`;
  const family = route ? ROUTES.get(route)!.family : 'cohere';
  res.status(404).json(errorBody(family, 404, message));
}
