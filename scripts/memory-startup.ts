/**
 * Two numbers the benchmark table does not hold: how fast the server answers the MCP
 * handshake versus how long the model takes to load (the first call waits for it), and
 * whether peak memory stays put when a call grows from 100 to 1000 documents of 512 tokens.
 * Run: `npm run build && node --import tsx scripts/memory-startup.ts [--variant int8]`.
 */
import { join, resolve } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ensureModel, readTriplets } from './bench/workload.js';
import { procStatusMb } from './bench/procfs.js';
import { FIXTURES } from '../test/helpers/fixtures.js';

const ROOT = resolve(import.meta.dirname, '..');
const MODEL = join(ROOT, '.cache', 'models', 'minilm-l6-ternary');
const { values } = parseArgs({ options: { variant: { type: 'string', default: 'int8' } } });

ensureModel(join(FIXTURES, 'models', 'minilm-l6-ternary'), MODEL);
const texts = readTriplets(join(FIXTURES, 'agro', 'triplets.jsonl')).flatMap((t) => [t.positive_text, ...t.negative_texts]);
// Each document is several passages glued together: well over 512 tokens, so every pair is cut to the maximum.
const longDocument = (i: number) => Array.from({ length: 6 }, (_, k) => texts[(i * 7 + k) % texts.length]).join('\n') + ` (${i})`;

async function start() {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(ROOT, 'dist', 'cli.js'), '--model', MODEL, '--variant', values.variant!, '--cache-size', '0'],
    env: { ...(process.env as Record<string, string>), RERANK_FEEDBACK_DB: join(mkdtempSync(join(tmpdir(), 'rerank-mem-')), 'f.db'), RERANK_LOG_MAX_CALLS: '0', RERANK_STANDALONE: '1' },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'memory-startup', version: '0' });
  const t0 = performance.now();
  await client.connect(transport);
  const handshakeMs = performance.now() - t0;
  await client.callTool({ name: 'score_pair', arguments: { query: 'q', document: 'd' } }, undefined, { timeout: 600_000 });
  const firstCallMs = performance.now() - t0;
  return { client, pid: transport.pid!, handshakeMs, firstCallMs };
}

const query = 'where is the hybrid search implementation that combines BM25 and vector search?';
const rows: string[] = [];
for (const n of [100, 1000]) {
  const { client, pid, handshakeMs, firstCallMs } = await start();
  const before = procStatusMb(pid, 'VmHWM');
  const t = performance.now();
  await client.callTool({ name: 'rerank', arguments: { query, documents: Array.from({ length: n }, (_, i) => longDocument(i)), return_documents: false } }, undefined, { timeout: 1_800_000 });
  const seconds = (performance.now() - t) / 1000;
  rows.push(`| ${n} | ${handshakeMs.toFixed(0)} | ${firstCallMs.toFixed(0)} | ${before.toFixed(0)} | ${procStatusMb(pid, 'VmHWM').toFixed(0)} | ${(n / seconds).toFixed(1)} |`);
  await client.close();
}
console.log(`model ${MODEL} (${values.variant}), documents of >512 tokens (every pair cut to 512), default --max-batch-tokens\n`);
console.log('| documents | handshake ms | first call ms (waits for the model) | peak RSS before MB | peak RSS after MB | pairs/s |');
console.log('|---:|---:|---:|---:|---:|---:|');
console.log(rows.join('\n'));
