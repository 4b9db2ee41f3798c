import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerContext } from '../../api/context.js';
import { scorePairInput } from '../../api/schemas.js';
import { engineFor, explainRefusal, submitOptionsFor } from '../../api/call.js';
import { scorePairOutput } from '../schemas.js';
import { callOf, errorResult, structuredResult } from '../tool-context.js';

export function registerScorePairTool(server: McpServer, { host, inFlight }: ServerContext): void {
  server.registerTool(
    'score_pair',
    {
      title: 'Score query-passage pairs',
      description:
        'Judge how relevant one passage is to one query (or several independent pairs at once) with the local cross-encoder. ' +
        'Use it to check a single candidate or to compare pairs with different queries; to order many passages for one query, call rerank instead. ' +
        'Pass {query, document} or {pairs: [{query, document}, ...]}; scores come back in input order.',
      inputSchema: scorePairInput,
      outputSchema: scorePairOutput,
      annotations: { title: 'Score query-passage pairs', readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    (args, extra) =>
      inFlight.track(async () => {
        const single = args.query !== undefined || args.document !== undefined;
        if (single === (args.pairs !== undefined)) {
          return errorResult('score_pair takes either {query, document} or {pairs: [{query, document}, ...]}, not both and not neither');
        }
        if (single && (args.query === undefined || args.document === undefined)) {
          return errorResult('score_pair needs both query and document');
        }
        const pairs = args.pairs ?? [{ query: args.query!, document: args.document! }];
        const call = callOf(extra);
        const engine = await engineFor(host, call);
        const scores = await engine.scorePairs(pairs, { ...submitOptionsFor(call), longDocuments: args.long_documents, instruction: args.instruction }).catch((err) => explainRefusal(err, call));
        return structuredResult({ model: engine.model.files.dir, results: scores });
      }),
  );
}
