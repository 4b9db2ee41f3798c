#!/usr/bin/env node
// One `rerank` call over stdio against an installed rerank-mcp, through the MCP SDK's client: the
// last step of install.sh, and the check a newcomer runs. Exit 0 with the ranking, 1 when the
// server cannot serve (with one line saying what to do).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const bin = process.argv[2] ?? 'rerank-mcp';
const started = Date.now();
// --standalone: a check should leave no shared daemon running behind it.
const transport = new StdioClientTransport({ command: bin, args: ['--standalone'], env: { ...process.env }, stderr: 'inherit' });
const client = new Client({ name: 'rerank-mcp-install-check', version: '0.0.0' });
await client.connect(transport);
try {
  const res = await client.callTool({
    name: 'rerank',
    arguments: {
      query: 'where is the hybrid search implemented?',
      documents: ['def hybrid_search(q): return fuse(bm25(q), dense(q))', 'Install with npm ci', 'The logo is blue.'],
      return_documents: true,
    },
  });
  if (res.isError) {
    const why = res.content?.[0]?.text ?? 'unknown error';
    console.error(`first rerank failed: ${why}`);
    console.error(`offline? The default model comes from the Hugging Face Hub once (about 90 MB); rerank-mcp is installed: without the network, check it with a local model: RERANK_MODEL=/path/to/model-dir node scripts/first-rerank.mjs ${bin} (see docs/models.md)`);
    process.exitCode = 1;
  } else {
    const { model, results } = res.structuredContent;
    console.log(`first rerank answered in ${((Date.now() - started) / 1000).toFixed(1)} s by ${model}:`);
    for (const r of results) console.log(`  ${r.score.toFixed(4)}  ${typeof r.document === 'string' ? r.document : r.document.text}`);
    console.log(`next: ${bin} client-config claude-desktop --write   (or cursor, vscode, claude-code)`);
  }
} finally {
  await client.close();
}
