import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerContext } from '../../api/context.js';
import type { ScoringEngine } from '../../engine/scoring-engine.js';
import { modelInfoInput } from '../../api/schemas.js';
import { engineFor } from '../../api/call.js';
import { modelInfoOutput } from '../schemas.js';
import { callOf, structuredResult } from '../tool-context.js';

/**
 * How long model_info waits for a load under way before it answers "loading": long enough for
 * a model already on disk, short enough that a download never leaves the caller hanging.
 */
const LOAD_WAIT_MS = 10_000;

export function registerModelInfoTool(server: McpServer, { host, inFlight }: ServerContext): void {
  server.registerTool(
    'model_info',
    {
      title: 'Reranker model information',
      description:
        'Describe the loaded cross-encoder: model path, ONNX variant and inputs, max tokens per pair, score activation, label count, ' +
        'tokenizer family (and whether its token ids are verified against Python), ' +
        'ONNX Runtime version, threads and batching counters. Use it to tell which model produced scores or to explain a score range, ' +
        'or, when other tools fail, whether the model is still loading or why it failed to load (state, error).',
      inputSchema: modelInfoInput,
      outputSchema: modelInfoOutput,
      annotations: { title: 'Reranker model information', readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    (_args, extra) =>
      inFlight.track(async () => {
        // A model that cannot be had is a state to report here, not an error: this is where the caller learns why.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const engine = await Promise.race([
          engineFor(host, callOf(extra)).catch((): undefined => undefined),
          new Promise<undefined>((resolve) => {
            timer = setTimeout(() => resolve(undefined), LOAD_WAIT_MS);
          }),
        ]).finally(() => clearTimeout(timer));
        if (!engine) return structuredResult({ state: host.state, model: host.modelName, ...(host.error !== undefined ? { error: host.error } : {}) });
        return structuredResult({ state: 'ready' as const, model: host.modelName, ...describe(engine) });
      }),
  );
}

function describe(engine: ScoringEngine) {
  return {
    ...engine.model.info(),
    max_batch_tokens: engine.options.maxBatchTokens,
    batch_wait_ms: engine.options.batchWaitMs,
    batches_run: engine.queue.counters.batches,
    pairs_scored: engine.queue.counters.pairs,
    chunk_overlap: engine.options.chunkOverlap,
    max_call_tokens: engine.options.maxCallTokens,
    max_call_ms: engine.options.maxCallMs ?? 0,
    ...(engine.model.session.prefixGraph ? { prefix_runs: engine.model.session.prefixGraph.counters.prefixRuns, prefix_batches: engine.model.session.prefixGraph.counters.batches } : {}),
    cache: engine.cache.stats(),
  };
}
