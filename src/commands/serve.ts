/** `rerank-mcp serve`: the MCP server, over stdio or Streamable HTTP. */
import type { Config } from '../config.js';
import { EngineHost } from '../engine/engine-host.js';
import { ScoreCache } from '../engine/score-cache.js';
import { resolveModelFiles } from '../model/model-dir.js';
import { serveStdio } from '../transports/stdio.js';
import { serveHttp } from '../transports/http.js';
import { log } from '../log.js';
import { engineOptionsFrom, modelOptionsFrom } from './load-engine.js';
import { FeedbackService } from '../feedback/feedback-service.js';
import { resolveDbPath } from '../feedback/db-path.js';

export async function runServe(config: Config): Promise<number> {
  const modelOptions = modelOptionsFrom(config);
  // Missing files fail here, before a client is told the server is up.
  const files = resolveModelFiles(modelOptions.model, modelOptions.variant);
  const host = new EngineHost(modelOptions, engineOptionsFrom(config), new ScoreCache(config.cacheSize));
  const started = performance.now();
  host.ready().then(
    (engine) => log(`model loaded in ${Math.round(performance.now() - started)} ms: ${engine.model.files.onnxPath} (${engine.model.activation}, max_length ${engine.model.maxLength})`),
    (err) => {
      log(`error: ${(err as Error).message}`);
      process.exit(1);
    },
  );
  if (!config.noWatch) host.watchModelDir(files.dir);
  // SIGHUP reloads the model in place, as daemons reload their configuration.
  process.on('SIGHUP', () => void host.reload('SIGHUP').catch(() => undefined));
  const feedback = new FeedbackService(resolveDbPath(config.db), { maxCalls: config.rerankLogMaxCalls, maxDays: config.rerankLogMaxDays });
  if (config.http) {
    const running = await serveHttp(host, feedback, { host: config.host, port: config.port, token: config.token });
    const stop = () => void running.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  } else {
    await serveStdio(host, feedback);
  }
  return new Promise<number>(() => undefined);
}
