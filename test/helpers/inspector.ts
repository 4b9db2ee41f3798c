/**
 * The MCP Inspector (devDependency @modelcontextprotocol/inspector) in CLI mode: a second,
 * independent MCP client. Each call is one `mcp-inspector --cli ... --format json` process that
 * connects, runs one method and prints one JSON object on stdout.
 *
 * Syntax (Inspector 2.x, see `mcp-inspector --cli --help`):
 *   stdio: mcp-inspector --cli --format json node dist/cli.js --model DIR -e KEY=VALUE --method tools/list
 *   http:  mcp-inspector --cli --format json --transport http --server-url http://127.0.0.1:PORT/mcp --method ...
 *   call:  --method tools/call --tool-name rerank --tool-arg query=... --tool-arg 'documents=[...]'
 *          (each --tool-arg value is tried as JSON first, then kept as a string), or
 *          --tool-args-json '{"query": ...}' to pass an object verbatim.
 * Exit codes: 0 ok, 5 a tool answered isError (its result is still printed on stdout).
 *
 * Offline and self-contained: run with this Node binary (no npx, no download, no browser),
 * HOME and the Inspector's catalog/config/secret paths in a temp dir, proxy variables removed,
 * and the Inspector in a process group of its own that is SIGKILLed after each call, so that
 * a stdio server it spawned can never outlive the call.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, REPO_ROOT, TEST_DAEMON_DIR } from './fixtures.js';

export const INSPECTOR = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');

export interface InspectorRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed: `{result: ...}` on success or a tool error, `{error: ...}` otherwise. */
  json: { result?: Record<string, unknown> & { isError?: boolean; structuredContent?: Record<string, unknown> }; error?: { code?: string; message?: string } };
  /** Members of the Inspector's process group (e.g. a stdio server) still alive when it exited. */
  leftovers: boolean;
  args: string[];
}

export type Target = { stdio: { serverArgs: string[]; env: Record<string, string> } } | { http: string };

const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'];

/** The Inspector's own environment: nothing of it lands in the user's home. */
function inspectorEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, MCP_CATALOG_PATH: join(home, 'mcp.json'), MCP_CLIENT_CONFIG_PATH: join(home, 'client.json'), MCP_STORAGE_DIR: join(home, 'storage'), NO_COLOR: '1' };
  for (const name of PROXY_VARS) delete env[name];
  // The server's feedback DB must come only through -e: the Inspector's stdio transport passes
  // the server a default environment (HOME, PATH, ...) plus -e, not its own environment.
  delete env.RERANK_FEEDBACK_DB;
  return env;
}

export function targetArgs(target: Target): string[] {
  if ('http' in target) return ['--transport', 'http', '--server-url', target.http];
  // process.execPath rather than `node`, so the server runs on the same Node as the test.
  // The Inspector gives the server a default environment: the test's daemon directory must be passed on, or a
  // daemon would start in the Inspector's temporary HOME and outlive the test.
  const daemon = { RERANK_DAEMON_DIR: TEST_DAEMON_DIR, RERANK_DAEMON_IDLE_SECONDS: process.env.RERANK_DAEMON_IDLE_SECONDS ?? '60' };
  const env = Object.entries({ ...daemon, ...target.stdio.env }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  return [process.execPath, CLI, ...target.stdio.serverArgs, ...env];
}

const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

const killGroup = (pgid: number): void => {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    /* already gone */
  }
};

/** Runs one Inspector CLI call; `method` is e.g. ['--method', 'tools/list']. */
export async function inspector(target: Target, method: string[], options: { timeoutMs?: number } = {}): Promise<InspectorRun> {
  const args = [INSPECTOR, '--cli', '--format', 'json', ...targetArgs(target), ...method];
  const home = mkdtempSync(join(tmpdir(), 'rerank-inspector-home-'));
  const child = spawn(process.execPath, args, { env: inspectorEnv(home), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pgid = child.pid!;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(pgid);
  }, timeoutMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve({ code: c, signal: s }));
  });
  clearTimeout(timer);
  // A stdio server gets its stdin closed when the Inspector disconnects; give it a moment to go.
  const deadline = Date.now() + 5_000;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const leftovers = groupAlive(pgid);
  killGroup(pgid);
  rmSync(home, { recursive: true, force: true });
  const shown = args.map((a) => (a.length > 120 ? `${a.slice(0, 117)}...` : a)).join(' ');
  if (timedOut) throw new Error(`inspector timed out after ${timeoutMs} ms: ${shown}\nstderr: ${stderr.slice(-2000)}`);
  let json: InspectorRun['json'];
  try {
    json = JSON.parse(stdout) as InspectorRun['json'];
  } catch {
    throw new Error(`inspector printed no JSON (exit ${code ?? signal}): ${shown}\nstdout: ${stdout.slice(0, 2000)}\nstderr: ${stderr.slice(-2000)}`);
  }
  return { code, signal, stdout, stderr, json, leftovers, args };
}

/** tools/call with --tool-arg key=value pairs (values JSON-encoded unless plain strings). */
export function toolArgs(args: Record<string, unknown>): string[] {
  return Object.entries(args).flatMap(([k, v]) => ['--tool-arg', `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`]);
}

export const callTool = (target: Target, name: string, args: Record<string, unknown>, how: 'tool-arg' | 'json' = 'tool-arg'): Promise<InspectorRun> =>
  inspector(target, ['--method', 'tools/call', '--tool-name', name, ...(how === 'json' ? ['--tool-args-json', JSON.stringify(args)] : toolArgs(args))]);
