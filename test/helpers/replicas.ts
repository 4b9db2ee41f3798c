/**
 * Stateless replicas of the built server behind the real haproxy, configured by
 * deploy/haproxy.cfg with only its bind and server lines replaced. The shared feedback
 * database is a parameter: RERANK_TEST_SHARED_DB (a SQLite path, or a postgres:// URL once
 * that store exists) names it; by default each test gets a fresh SQLite file, which replicas
 * on one machine can share.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './fixtures.js';
import { freePort } from './net.js';
import { freshDbPath, startHttpServer, type HttpServerProcess } from './mcp.js';

export const HAPROXY_CFG = join(REPO_ROOT, 'deploy', 'haproxy.cfg');

export function haproxyPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v haproxy || ls /usr/sbin/haproxy 2>/dev/null'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  return found || undefined;
}

export const sharedDb = (): string => process.env.RERANK_TEST_SHARED_DB || freshDbPath();

/** `n` replicas with --stateless on one database, started one after the other (2 cores). */
export async function startReplicas(n: number, db: string, args: string[], env: Record<string, string> = {}): Promise<HttpServerProcess[]> {
  const replicas: HttpServerProcess[] = [];
  for (let i = 0; i < n; i++) replicas.push(await startHttpServer(['--stateless', ...args], { RERANK_FEEDBACK_DB: db, ...env }));
  return replicas;
}

export interface Balancer {
  url: string;
  child: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

/**
 * deploy/haproxy.cfg with its bind line on a loopback port and one server line per replica.
 * Until the server answers /readyz (another branch adds it), the check falls back to /healthz.
 */
export async function startHaproxy(replicaUrls: string[], options: { port?: number; shippedCheckInterval?: boolean } = {}): Promise<Balancer> {
  const port = options.port;
  const bin = haproxyPath();
  if (!bin) throw new Error('haproxy is not installed: apt-get install -y --no-install-recommends haproxy (.ci/run does)');
  const listen = port ?? (await freePort());
  const readyz = await status(new URL('/readyz', replicaUrls[0]).href);
  let cfg = readFileSync(HAPROXY_CFG, 'utf8')
    .replace(/^(\s*)bind .*$/m, `$1bind 127.0.0.1:${listen}`)
    .replace(/^\s*server .*\n/gm, '')
    .replace(/(default-server .*\n)/, `$1${replicaUrls.map((u, i) => `    server r${i + 1} ${new URL(u).host}\n`).join('')}`)
    // Tests want replicas up quickly; the load script keeps the shipped interval.
    .replace(/inter 2s/, options.shippedCheckInterval ? 'inter 2s' : 'inter 300ms');
  if (readyz === 404) cfg = cfg.replace('uri /readyz', 'uri /healthz');
  const file = join(mkdtempSync(join(tmpdir(), 'rerank-haproxy-')), 'haproxy.cfg');
  writeFileSync(file, cfg);
  const child = spawn(bin, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${listen}`;
  // Up once every replica has answered through it (its health checks have passed).
  const seen = new Set<string>();
  const deadline = Date.now() + 30_000;
  while (seen.size < replicaUrls.length) {
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${output}`);
    if (Date.now() > deadline) throw new Error(`haproxy: only ${[...seen].join(', ')} of ${replicaUrls.length} replicas came up: ${output}`);
    const replica = await replicaOf(`${url}/healthz`);
    if (replica) seen.add(replica);
    else await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    log: () => output,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { host: 'localhost' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

function replicaOf(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(url, (res) => {
      res.resume();
      const name = res.headers['x-rerank-replica'];
      resolve(res.statusCode === 200 && typeof name === 'string' ? name : undefined);
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** A fetch that remembers which replica answered each request (haproxy's X-Rerank-Replica). */
export function recordingFetch(): { fetch: typeof fetch; replicas: string[] } {
  const replicas: string[] = [];
  const recording: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    replicas.push(res.headers.get('x-rerank-replica') ?? '?');
    return res;
  };
  return { fetch: recording, replicas };
}
