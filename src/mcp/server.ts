/**
 * Builds an MCP server over an engine, knowing nothing of transports: stdio makes one,
 * HTTP makes one per session.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerContext } from '../api/context.js';
import { registerFeedbackTool } from './tools/feedback.js';
import { registerFeedbackStatsResource } from './feedback-stats-resource.js';
import { registerModelInfoTool } from './tools/model-info.js';
import { registerRerankTool } from './tools/rerank.js';
import { registerScorePairTool } from './tools/score-pair.js';
import { PACKAGE_VERSION } from '../version.js';

export type { ServerContext };

export function createRerankServer(ctx: ServerContext): McpServer {
  const server = new McpServer(
    { name: 'rerank-mcp', version: PACKAGE_VERSION },
    {
      capabilities: { tools: {}, resources: {}, logging: {} },
      instructions:
        'Local cross-encoder reranker. After retrieving candidate passages, call rerank with the query and candidates to get them best first; ' +
        'use score_pair to judge single pairs; once you know which results were right, call feedback with the rerank_id so the model can learn; ' +
        'model_info tells which model is loaded; the resource feedback://stats summarizes recorded feedback.',
    },
  );
  registerRerankTool(server, ctx);
  registerScorePairTool(server, ctx);
  registerModelInfoTool(server, ctx);
  registerFeedbackTool(server, ctx);
  registerFeedbackStatsResource(server, ctx.feedback);
  return server;
}
