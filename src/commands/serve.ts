/** `rerank-mcp serve`: the MCP server, over stdio or Streamable HTTP. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { allowedHostList, corsOriginList, type Config } from '../config.js';
import { EngineHost } from '../engine/engine-host.js';
import { ScoreCache } from '../engine/score-cache.js';
import { resolveModelFiles } from '../model/model-dir.js';
import { serveStdio } from '../transports/stdio.js';
import { serveHttp } from '../transports/http.js';
import { log } from '../log.js';
import { engineOptionsFrom, prepareModel } from './load-engine.js';
import { tidyServedDir } from './model-swap.js';
import { FeedbackService } from '../feedback/feedback-service.js';
import { resolveDbPath } from '../feedback/db-path.js';
import { InFlight } from '../api/in-flight.js';
import { DEFAULT_MODEL, parseOrThrow } from '../hub/resolve-model.js';
import type { ProgressEvent } from '../hub/progress.js';
import type { ServerContext } from '../api/context.js';
import { versionOf } from '../model/model-dir.js';
import { metricsOn, observeBatch, startTelemetry, stopTelemetry, watch } from '../observability/index.js';

/** How long a shutdown waits for calls under way before it exits anyway. */
const DRAIN_TIMEOUT_MS = 10_000;
/** Over stdio the model loads after the handshake, or this long after the server is up. */
const STDIO_LOAD_FALLBACK_MS = 1000;

/** The engine, feedback store and call registry one process shares among all its sessions. */
export interface SharedEngine {
  ctx: ServerContext;
  host: EngineHost;
  /** Starts the model load once; later calls return the same promise. */
  startLoading: () => Promise<void>;
  /** The load under way, if any (a repo model is not downloaded just to exit). */
  loading: () => Promise<void> | undefined;
  localDir: boolean;
  /** Waits for calls under way (at most DRAIN_TIMEOUT_MS), then closes the engine and the database. */
  drainAndClose: (why: string) => Promise<void>;
  /** Metrics port and trace export, as the configuration and OTEL_* variables ask (docs/operations.md). */
  startTelemetry: () => Promise<void>;
}

/**
 * `exitOnLocalFailure`: a local directory the user named that does not load is a mistake to fix
 * before anything else, so a standalone server ends with exit 1; the shared daemon keeps serving
 * (every call reports the error), since its shims would only start it again.
 */
export function openSharedEngine(config: Config, { exitOnLocalFailure }: { exitOnLocalFailure: boolean }): SharedEngine {
  // A local directory with missing files fails here, before a client is told the server is up;
  // a repo id is fetched in the background while the handshake is answered.
  // A name that is neither fails here too: no download could ever fix it.
  const localDir = config.model !== undefined && existsSync(config.model);
  if (localDir) {
    // What a promotion killed half-way left (staging copies, unreferenced versions) goes first.
    tidyServedDir(resolve(config.model!));
    resolveModelFiles(config.model!, config.variant);
  }
  else if (config.model !== undefined) parseOrThrow(config.model);
  const prepare = (onProgress: (p: ProgressEvent) => void) => {
    log(`loading the model ${config.model ?? DEFAULT_MODEL}`);
    return prepareModel(config, onProgress);
  };
  const host = new EngineHost(prepare, engineOptionsFrom(config), new ScoreCache(config.cacheSize), config.model ?? DEFAULT_MODEL);
  // Called once the transport is up (stdio: when the client has finished the handshake), so
  // that the event-loop-blocking session creation never holds the handshake back. A model
  // named by repo id that cannot be fetched (offline, empty cache) fails the tool calls, not
  // the server: the client would only see "disconnected", and the next call may find the
  // network back. A local directory the user named that does not load is a mistake to fix
  // before anything else, so that still ends the server with exit 1.
  let loaded: Promise<void> | undefined;
  const startLoading = (): Promise<void> =>
    (loaded ??= host.start().then(
      () => undefined,
      () => {
        // A turn of the event loop first, so replies already on their way (initialize) still leave.
        if (localDir && exitOnLocalFailure) setTimeout(() => process.exit(1), 50);
      },
    ));
  if (!config.noWatch) void host.watchModelDir().catch(() => undefined);
  // SIGHUP reloads the model in place, as daemons reload their configuration.
  process.on('SIGHUP', () => void host.reload('SIGHUP').catch(() => undefined));
  const ctx: ServerContext = {
    host,
    feedback: new FeedbackService(resolveDbPath(config.db), { maxCalls: config.rerankLogMaxCalls, maxDays: config.rerankLogMaxDays, maxBytes: config.rerankLogMaxMb * 1024 * 1024 }),
    inFlight: new InFlight(),
  };
  const drainAndClose = async (why: string) => {
    if (ctx.inFlight.size > 0) log(`${why}: finishing ${ctx.inFlight.size} call(s) in flight`);
    const drained = await ctx.inFlight.idle(DRAIN_TIMEOUT_MS);
    if (!drained) log(`${why}: ${ctx.inFlight.size} call(s) still running after ${DRAIN_TIMEOUT_MS / 1000} s, exiting anyway`);
    // A turn of the event loop lets the last replies leave before the process does.
    await new Promise((resolve) => setTimeout(resolve, 50));
    host.close();
    await Promise.all([ctx.feedback.close().catch(() => undefined), stopTelemetry()]);
  };
  return { ctx, host, startLoading, loading: () => loaded, localDir, drainAndClose, startTelemetry: () => startObservability(config, ctx) };
}

/** What metrics read at scrape time (nothing on the call path), and the batch histograms when metrics are on. */
async function startObservability(config: Config, ctx: ServerContext): Promise<void> {
  const { host } = ctx;
  watch({
    queueSize: () => host.current?.queue.waiting ?? 0,
    inFlight: () => ctx.inFlight.size,
    cache: () => ({ hits: host.cache.hits, misses: host.cache.misses, entries: host.cache.size }),
    model: () => {
      const model = host.current?.model;
      if (!model) return undefined;
      return { model: host.modelName, fingerprint: model.id.slice(model.id.lastIndexOf('~') + 1), version: versionOf(model.files.root) ?? '', variant: config.variant };
    },
    modelCounters: () => host.counters,
    rerankLogBytes: () => ctx.feedback.rerankLogBytes,
  });
  await startTelemetry({ metricsPort: config.metricsPort, host: config.host, traceDocuments: config.traceDocuments });
  if (metricsOn()) host.observeBatches(observeBatch);
}

export async function runServe(config: Config): Promise<number> {
  const { ctx, startLoading, loading, localDir, drainAndClose, startTelemetry: startObservabilityNow } = openSharedEngine(config, { exitOnLocalFailure: true });
  await startObservabilityNow();
  let stopAccepting = () => {};
  let shuttingDown = false;
  const shutdown = async (why: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    stopAccepting();
    await drainAndClose(why);
    log(`${why}: exiting`);
    process.exit(0);
  };

  // Installed before the transport announces itself, so a signal sent right after that line is handled.
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  if (config.http) {
    const running = await serveHttp(ctx, {
      host: config.host,
      port: config.port,
      token: config.token,
      maxBodyBytes: config.maxBodyMb * 1024 * 1024,
      sessionIdleMs: config.sessionIdleSeconds * 1000,
      maxSessions: config.maxSessions,
      maxConnections: config.maxConnections,
      allowedHosts: allowedHostList(config.allowedHosts),
      corsOrigins: corsOriginList(config.corsOrigins),
      stateless: config.stateless,
    });
    stopAccepting = () => running.stopListening();
    setImmediate(() => void startLoading());
  } else {
    watch({ sessions: () => 1 });
    await serveStdio(ctx, config.maxBodyMb * 1024 * 1024, {
      onInitialized: () => void startLoading(),
      // A load under way settles first, and a local model is loaded if none was, so a broken one is
      // reported, not hidden by exit 0; a repo model is not downloaded just to exit.
      onEnd: () => void (localDir ? startLoading() : (loading() ?? Promise.resolve())).then(() => shutdown('stdin closed')),
    });
    // A client that never completes the handshake still learns soon whether the model loads.
    setTimeout(() => void startLoading(), STDIO_LOAD_FALLBACK_MS).unref();
  }
  return new Promise<number>(() => undefined);
}
