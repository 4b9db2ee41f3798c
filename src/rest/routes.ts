/**
 * The REST face: the rerank API that RAG tools without MCP speak (Open WebUI, Dify, LiteLLM,
 * LangChain/LlamaIndex rerankers), on the MCP server's port and token. Each route validates
 * with the same limits and runs the same call (src/api) as the MCP tools: same engine queue
 * (so a small call is not held behind a large one), same rerank log (its id is the rerank_id
 * that /v1/feedback and the MCP feedback tool accept), cancelled when the client hangs up.
 * Errors are {error: {message}}, one line that says what to fix.
 */
import { randomUUID } from 'node:crypto';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { ZodError, type ZodType } from 'zod';
import type { ServerContext } from '../api/context.js';
import { CallTooLarge, UsageError, type CallContext } from '../api/call.js';
import { runRerank, type RerankOutcome } from '../api/rerank.js';
import { runFeedback } from '../api/feedback.js';
import { feedbackInput } from '../api/schemas.js';
import { FeedbackError } from '../feedback/feedback-store.js';
import { log } from '../log.js';
import { cohereRerankRequest, teiRerankRequest, type CohereRerankRequest } from './schemas.js';

export interface RestOptions {
  /** The transport's token check (the same as /mcp's); absent when no token is configured. */
  authorized?: (req: Request) => boolean;
  maxBodyBytes: number;
  /** REST calls running at once; one more gets 429 with Retry-After. */
  maxConcurrent: number;
}

export const REST_PATHS = ['/v1/rerank', '/v2/rerank', '/rerank', '/v1/feedback'] as const;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function restRoutes(ctx: ServerContext, options: RestOptions): Router {
  const router = Router();
  let running = 0;

  router.use(REST_PATHS as unknown as string[], (req: Request, res: Response, next: NextFunction) => {
    if (options.authorized && !options.authorized(req)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="rerank-mcp"');
      sendError(res, new HttpError(401, 'missing or wrong bearer token (set Authorization: Bearer <RERANK_MCP_TOKEN>)'));
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendError(res, new HttpError(405, `${req.method} is not allowed on ${req.path}: send POST with a JSON body`));
      return;
    }
    next();
  });
  router.use(REST_PATHS as unknown as string[], express.json({ limit: options.maxBodyBytes }));

  /** Runs one call: validated input, the concurrency bound, cancellation when the client goes away. */
  const handle =
    <T>(schema: ZodType<T>, work: (input: T, call: CallContext, res: Response) => Promise<unknown>) =>
    async (req: Request, res: Response): Promise<void> => {
      const controller = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) controller.abort();
      });
      try {
        const input = schema.parse(req.body ?? {});
        if (running >= options.maxConcurrent) {
          res.setHeader('Retry-After', '1');
          throw new HttpError(429, `too many calls at once: ${options.maxConcurrent} are running (--max-sessions); retry shortly`);
        }
        running++;
        try {
          const body = await ctx.inFlight.track(() => work(input, { signal: controller.signal, source: clientName(req) }, res));
          if (!controller.signal.aborted) res.json(body);
        } finally {
          running--;
        }
      } catch (err) {
        if (controller.signal.aborted) return;
        sendError(res, classify(err, ctx));
      }
    };

  const cohere = (version: '1' | '2') =>
    handle(cohereRerankRequest, async (input, call, res) => {
      const outcome = await runRerank(ctx, { query: input.query, documents: input.documents.map((d) => (typeof d === 'string' ? d : { text: d.text })), instruction: input.instruction, deadlineMs: input.deadline_ms }, call);
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
      // TEI answers a bare array: whether a deadline cut the call short is in X-Rerank-Complete.
      res.setHeader('X-Rerank-Complete', String(outcome.complete));
      return outcome.ranked.map((r) => ({ index: r.index, score: r.scored === false ? null : input.raw_scores ? r.logit : sigmoid(r.logit), ...(r.scored === false ? { scored: false } : {}), ...(input.return_text ? { text: input.texts[r.index] } : {}) }));
    }),
  );

  router.post(
    '/v1/feedback',
    handle(feedbackInput, (input, call) => runFeedback(ctx, input, call)),
  );

  // Bodies over the limit or not JSON, on these paths, answered in this face's error shape.
  router.use(REST_PATHS as unknown as string[], (err: Error & { status?: number; length?: number }, _req: Request, res: Response, next: NextFunction) => {
    if (err.status === 413) {
      const message = `request body${err.length ? ` of ${(err.length / 1024 / 1024).toFixed(1)} MiB` : ''} is over the limit of ${(options.maxBodyBytes / 1024 / 1024).toFixed(0)} MiB (--max-body-mb, RERANK_MAX_BODY_MB)`;
      log(message);
      sendError(res, new HttpError(413, message));
    } else if (err.status !== undefined && err.status < 500) sendError(res, new HttpError(err.status, `request body is not valid JSON: ${err.message}`));
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
    return { index: r.index, relevance_score: r.scored === false ? null : sigmoid(r.logit), ...(r.scored === false ? { scored: false } : {}), ...(returnDocuments ? { document: { text: typeof doc === 'string' ? doc : doc.text } } : {}) };
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

function sendError(res: Response, err: HttpError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.status(err.status).json({ error: { message: err.message.replace(/\s*\n\s*/g, ' ') } });
}
