/**
 * A team's deployment on one machine: three stateless replicas (--stateless) behind the real
 * haproxy, configured by deploy/haproxy.cfg, round-robin without stickiness, sharing one
 * feedback database (RERANK_TEST_SHARED_DB, default a fresh SQLite file). The MCP SDK client
 * reranks through the balancer on one replica and labels by rerank_id on another; a replica
 * SIGKILLed under feedback load loses no label it acknowledged.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CLI, REPO_ROOT, TINY_CE } from './helpers/fixtures.js';
import { HAPROXY_CFG, haproxyPath, recordingFetch, sharedDb, startHaproxy, startReplicas, type Balancer } from './helpers/replicas.js';
import type { HttpServerProcess } from './helpers/mcp.js';

type ToolResult = { isError?: boolean; content?: { text: string }[]; structuredContent?: Record<string, unknown> };

const db = sharedDb();
let replicas: HttpServerProcess[] = [];
let lb: Balancer;

before(async () => {
  replicas = await startReplicas(3, db, ['--model', TINY_CE]);
  lb = await startHaproxy(replicas.map((r) => r.url));
});
after(async () => {
  await lb?.stop();
  await Promise.all(replicas.map((r) => (r.child.exitCode === null && r.child.signalCode === null ? r.stop() : undefined)));
});

async function connect(): Promise<{ client: Client; replicas: string[] }> {
  const recorder = recordingFetch();
  const client = new Client({ name: 'replicas-test', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${lb.url}/mcp`), { fetch: recorder.fetch }));
  return { client, replicas: recorder.replicas };
}

test('deploy/haproxy.cfg passes haproxy -c as shipped', () => {
  const out = execFileSync(haproxyPath()!, ['-c', '-f', HAPROXY_CFG], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.match(out, /Configuration file is valid/);
});

test('replicas: the SDK client works through round-robin; rerank on one replica, feedback by rerank_id on another', async () => {
  const { client, replicas: servedBy } = await connect();
  try {
    const documents = Array.from({ length: 40 }, (_, i) => `def handler_${i}(request): return search(request.query, limit=${i})`);
    const pairs: { rerankId: string; rerankOn: string; feedbackOn: string }[] = [];
    let progress = 0;
    for (let i = 0; i < 4; i++) {
      const before = servedBy.length;
      const ranked = (await client.callTool({ name: 'rerank', arguments: { query: `where is search handler ${i}?`, documents } }, undefined, { onprogress: () => progress++ })) as ToolResult;
      assert.ok(!ranked.isError, ranked.content?.[0]?.text);
      const rerankOn = servedBy[before];
      const rerankId = ranked.structuredContent!.rerank_id as string;
      assert.ok(rerankId);
      const labeled = (await client.callTool({ name: 'feedback', arguments: { rerank_id: rerankId, relevant: [0], irrelevant: [1, 2] } })) as ToolResult;
      assert.ok(!labeled.isError, labeled.content?.[0]?.text);
      assert.equal(labeled.structuredContent!.stored, 3);
      pairs.push({ rerankId, rerankOn, feedbackOn: servedBy.at(-1)! });
    }
    assert.ok(progress > 0, 'progress notifications stream on the POST response');
    assert.ok(pairs.some((p) => p.rerankOn !== p.feedbackOn), `every feedback landed on its rerank's replica: ${JSON.stringify(pairs)}`);
    assert.equal(new Set(servedBy).size, 3, `all three replicas answered: ${servedBy.join(',')}`);
    // No session: the replica that answered initialize is not the one that answered the calls, and nobody sent a session id.
    const info = (await client.callTool({ name: 'model_info', arguments: {} })) as ToolResult;
    assert.equal(info.structuredContent!.state, 'ready');
  } finally {
    await client.close();
  }
});

const python = process.env.RERANK_PYTHON;
const pythonHasMcp = python !== undefined && spawnSync(python, ['-c', 'import mcp'], { stdio: 'ignore' }).status === 0;

test('replicas: the official Python MCP SDK works through round-robin (skipped unless RERANK_PYTHON has the mcp package)', { skip: !pythonHasMcp && 'RERANK_PYTHON has no mcp package' }, () => {
  const out = execFileSync(python!, [join(REPO_ROOT, 'test', 'helpers', 'python_mcp_client.py'), `${lb.url}/mcp`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as { top: number; stored: number };
  assert.equal(result.stored, 1);
});

test('replicas: GET /mcp gets 405 on a stateless server, directly and through the balancer', async () => {
  for (const url of [replicas[0].url, `${lb.url}/mcp`]) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'GET', headers: { accept: 'text/event-stream' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 405, url);
  }
});

test('replicas: a replica SIGKILLed under feedback load loses no acknowledged label', async (t) => {
  const clients = await Promise.all([connect(), connect(), connect(), connect()]);
  const acknowledged: string[] = [];
  let failed = 0;
  let stop = false;
  let n = 0;
  const writer = async (client: Client) => {
    while (!stop) {
      const query = `durability probe ${n++} ${Date.now()}`;
      try {
        const res = (await client.callTool({ name: 'feedback', arguments: { query, document: `passage for ${query}`, label: 1 } })) as ToolResult;
        if (res.isError) failed++;
        else acknowledged.push(query);
      } catch {
        failed++;
      }
    }
  };
  const loops = clients.map((c) => writer(c.client));
  await new Promise((r) => setTimeout(r, 1500));
  const victim = replicas[1];
  victim.child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 2000));
  stop = true;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.client.close().catch(() => undefined)));
  const victimServed = clients.flatMap((c) => c.replicas).filter((r) => r === 'r2').length;
  t.diagnostic(`${acknowledged.length} labels acknowledged, ${failed} calls failed, ${victimServed} answered by the killed replica`);
  assert.ok(victimServed > 0, 'the killed replica took part in the load');
  assert.ok(acknowledged.length >= 5, `only ${acknowledged.length} labels acknowledged`);
  const exported = execFileSync(process.execPath, [CLI, 'feedback', 'export', '--db', db], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const stored = new Set(
    exported
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { sentence_0: string }).sentence_0),
  );
  assert.ok(stored.size >= acknowledged.length, `export holds ${stored.size} pairs`);
  const lost = acknowledged.filter((q) => !stored.has(q));
  assert.deepEqual(lost, [], `${lost.length} acknowledged labels are missing from the shared database`);
});
