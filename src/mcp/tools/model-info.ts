import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerContext } from '../server.js';
import { modelInfoOutput } from '../schemas.js';
import { engineFor, structuredResult } from '../tool-context.js';

export function registerModelInfoTool(server: McpServer, { host, inFlight }: ServerContext): void {
  server.registerTool(
    'model_info',
    {
      title: 'Reranker model information',
      description:
        'Describe the loaded cross-encoder: model path, ONNX variant and inputs, max tokens per pair, score activation, label count, ' +
          'tokenizer family (and whether its token ids are verified against Python), ' +
        'ONNX Runtime version, threads and batching counters. Use it to tell which model produced scores or to explain a score range.',
      inputSchema: {},
      outputSchema: modelInfoOutput,
      annotations: { title: 'Reranker model information', readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    (_args, extra) =>
      inFlight.track(async () => {
        const engine = await engineFor(host, extra);
        return structuredResult({
          ...engine.model.info(),
          max_batch_tokens: engine.options.maxBatchTokens,
          batch_wait_ms: engine.options.batchWaitMs,
          batches_run: engine.queue.counters.batches,
          pairs_scored: engine.queue.counters.pairs,
          chunk_overlap: engine.options.chunkOverlap,
          cache: engine.cache.stats(),
        });
      }),
  );
}
