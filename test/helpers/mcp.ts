/** Real MCP clients (the SDK's Client) against the built server, over stdio and HTTP. */
import { spawn, type ChildProcess } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './fixtures.js';

/** A feedback database of its own for each server a test starts, never the user's. */
export const freshDbPath = (): string => join(mkdtempSync(join(tmpdir(), 'rerank-db-')), 'feedback.db');

export interface StdioConnection {
  client: Client;
  pid: number | null;
  stderr: () => string;
  close(): Promise<void>;
}

export async function connectStdio(args: string[], env: Record<string, string> = {}): Promise<StdioConnection> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, ...args], env: { ...(process.env as Record<string, string>), RERANK_FEEDBACK_DB: freshDbPath(), ...env }, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'rerank-mcp-test', version: '0.0.0' });
  await client.connect(transport);
  return { client, pid: transport.pid, stderr: () => stderr, close: () => client.close() };
}

export interface HttpServerProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<number | null>;
}

/**
 * Starts `rerank-mcp --http --port 0` and waits for the line that gives its URL; `fdLimit` runs it
 * under that open-file limit (util-linux prlimit).
 */
export function startHttpServer(args: string[], env: Record<string, string> = {}, options: { fdLimit?: number } = {}): Promise<HttpServerProcess> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, CLI, '--http', '--port', '0', ...args];
    if (options.fdLimit) command.unshift('prlimit', `--nofile=${options.fdLimit}:${options.fdLimit}`);
    const child = spawn(command[0], command.slice(1), { env: { ...process.env, RERANK_FEEDBACK_DB: freshDbPath(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let resolved = false;
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.stderr.on('data', (d) => {
      stderr += d;
      const match = /at (http:\/\/\S+\/mcp)/.exec(stderr);
      if (match && !resolved) {
        resolved = true;
        resolve({
          url: match[1],
          child,
          stderr: () => stderr,
          stop: async () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    child.on('exit', (code) => {
      if (!resolved) reject(new Error(`server exited with ${code} before listening: ${stderr}`));
    });
  });
}

export async function connectHttp(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'rerank-mcp-test', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}
