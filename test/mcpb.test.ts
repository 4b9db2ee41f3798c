/**
 * The MCP Bundle as Claude Desktop installs it: `scripts/bundle.mjs` builds it (the official mcpb CLI
 * validates and packs), `mcpb unpack` opens it in a temp folder, and the server is launched exactly as
 * the manifest's mcp_config says (command, args, env, with ${__dirname} and ${user_config.*}
 * substituted), then a real MCP client lists and calls the tools.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { maxAbsDiff, readParity, REPO_ROOT, TINY_CE, type TinyParity } from './helpers/fixtures.js';

const MCPB = join(REPO_ROOT, 'node_modules', '@anthropic-ai', 'mcpb', 'dist', 'cli', 'cli.js');
const tiny = readParity<TinyParity>('tiny-ce.json');

interface Manifest {
  manifest_version: string;
  version: string;
  server: { type: string; entry_point: string; mcp_config: { command: string; args: string[]; env: Record<string, string> } };
  user_config: Record<string, { default?: string }>;
  tools: { name: string }[];
}

/** What Claude Desktop does with the manifest's placeholders. */
const substitute = (s: string, vars: Record<string, string>) => s.replace(/\$\{([^}]+)\}/g, (m, key: string) => vars[key] ?? m);

test('the .mcpb bundle validates, unpacks, and serves the tools as its manifest launches it', { timeout: 15 * 60_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'rerank-mcpb-'));
  const bundle = join(work, 'rerank-mcp.mcpb');
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle.mjs'), bundle], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const dir = join(work, 'unpacked');
  execFileSync(process.execPath, [MCPB, 'unpack', bundle, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync(process.execPath, [MCPB, 'validate', join(dir, 'manifest.json')], { stdio: ['ignore', 'ignore', 'pipe'] });

  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(manifest.manifest_version, '0.3');
  assert.equal(manifest.server.type, 'node');
  assert.equal(manifest.version, pkg.version);
  assert.ok(existsSync(join(dir, manifest.server.entry_point)), manifest.server.entry_point);
  assert.deepEqual(Object.keys(manifest.user_config).sort(), ['database', 'model']);

  const vars = { __dirname: dir, 'user_config.model': TINY_CE, 'user_config.database': join(work, 'feedback.db') };
  const { command, args, env } = manifest.server.mcp_config;
  const launchEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, substitute(v, vars)]));
  assert.deepEqual(launchEnv, { RERANK_MODEL: TINY_CE, RERANK_FEEDBACK_DB: join(work, 'feedback.db') });
  // Launched from outside the checkout, with only the bundle's own files to load.
  const transport = new StdioClientTransport({
    command,
    args: args.map((a) => substitute(a, vars)),
    env: { PATH: process.env.PATH!, HOME: work, RERANK_DAEMON_DIR: join(work, 'daemons'), ...launchEnv },
    cwd: work,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'mcpb-test', version: '0' });
  try {
    await client.connect(transport);
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(tools, manifest.tools.map((t) => t.name).sort());
    const { query, documents, result } = tiny.st_rank;
    const res = (await client.callTool({ name: 'rerank', arguments: { query, documents } })) as { isError?: boolean; structuredContent: { results: { index: number; score: number }[]; rerank_id: string } };
    assert.notEqual(res.isError, true, stderr);
    assert.deepEqual(res.structuredContent.results.map((r) => r.index), result.map((r) => r.corpus_id));
    assert.ok(maxAbsDiff(res.structuredContent.results.map((r) => r.score), result.map((r) => r.score)) < 1e-4);
    const fb = (await client.callTool({ name: 'feedback', arguments: { rerank_id: res.structuredContent.rerank_id, relevant: [result[0].corpus_id] } })) as { isError?: boolean };
    assert.notEqual(fb.isError, true, stderr);
    assert.ok(existsSync(join(work, 'feedback.db')), 'feedback went to the database user_config named');
  } finally {
    await client.close();
    execFileSync(process.execPath, [join(dir, 'dist', 'cli.js'), 'daemon', 'stop'], { env: { ...process.env, RERANK_DAEMON_DIR: join(work, 'daemons') }, stdio: 'ignore' });
  }
});
