/**
 * Builds an MCP server over an engine, knowing nothing of transports: stdio makes one,
 * HTTP makes one per session.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { EngineHost } from '../engine/engine-host.js';
import { registerModelInfoTool } from './tools/model-info.js';
import { registerRerankTool } from './tools/rerank.js';
import { registerScorePairTool } from './tools/score-pair.js';
import { PACKAGE_VERSION } from '../version.js';

export function createRerankServer(host: EngineHost): McpServer {
  const server = new McpServer(
    { name: 'rerank-mcp', version: PACKAGE_VERSION },
    {
      capabilities: { tools: {}, logging: {} },
      instructions:
        'Local cross-encoder reranker. After retrieving candidate passages, call rerank with the query and candidates to get them best first; ' +
        'use score_pair to judge single pairs; model_info tells which model is loaded.',
    },
  );
  registerRerankTool(server, host);
  registerScorePairTool(server, host);
  registerModelInfoTool(server, host);
  return server;
}
