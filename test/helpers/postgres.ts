/**
 * A real PostgreSQL server for the tests: Debian's postgresql package (installed by .ci/run),
 * a throwaway cluster in a temp directory on a free port, password login. PostgreSQL refuses to
 * run as root, so as root the cluster belongs to the `postgres` user and its commands run
 * through runuser. Unavailable locally: the tests that need it skip with the reason; in CI
 * (RERANK_REQUIRE_POSTGRES=1) they fail instead.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './net.js';

const PASSWORD = 'rerank-test-secret';

function findBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(root, versions[0], 'bin') : undefined;
}

const asRoot = process.getuid?.() === 0;

/** Why PostgreSQL cannot run here, or null when it can. */
export function postgresUnavailable(): string | null {
  if (!findBin()) return 'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)';
  if (asRoot && spawnSync('id', ['postgres']).status !== 0) return 'running as root and there is no postgres user to run the server as';
  return null;
}

/** The skip option for describe()/test(): false when PostgreSQL runs, the reason otherwise (a failure under RERANK_REQUIRE_POSTGRES=1). */
export function postgresSkip(): string | false {
  const reason = postgresUnavailable();
  if (reason && process.env.RERANK_REQUIRE_POSTGRES === '1') throw new Error(`RERANK_REQUIRE_POSTGRES=1 but ${reason}`);
  return reason ?? false;
}

export interface PostgresServer {
  port: number;
  /** postgres://…@127.0.0.1:port/<name>, creating the database first. */
  createDatabase(name: string): Promise<string>;
  /** A URL for a database on this server with nothing created. */
  url(database: string, password?: string): string;
  /** pg_ctl stop: `fast` rolls back open transactions and ends sessions (57P01); `immediate` is a crash, recovered from the WAL at the next start. */
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /**
   * stop(mode) then start(): what an operator's `pg_ctl restart -m mode` does to connected clients.
   * Asynchronous, so that the test's own clients keep sending while PostgreSQL goes down and comes up.
   */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server and removes its files. */
  destroy(): void;
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = findBin()!;
  const dir = mkdtempSync(join(tmpdir(), 'rerank-pg-'));
  chmodSync(dir, 0o755);
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, PASSWORD);
  chmodSync(pwfile, 0o644);
  const command = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args]);
  const run = (cmd: string, args: string[]) => {
    execFileSync(...command(cmd, args), { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  const runAsync = async (cmd: string, args: string[]) => {
    await promisify(execFile)(...command(cmd, args), { cwd: dir });
  };
  if (asRoot) execFileSync('chown', ['postgres', dir]);
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  // fsync stays on: the SIGKILL test counts on committed writes being durable.
  const startArgs = ['-D', data, '-w', '-t', '60', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`, 'start'];
  const stopArgs = (mode: 'fast' | 'immediate') => ['-D', data, '-w', '-m', mode, 'stop'];
  const start = () => run('pg_ctl', startArgs);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => run('pg_ctl', stopArgs(mode));
  start();
  const url = (database: string, password = PASSWORD) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  return {
    port,
    url,
    async createDatabase(name: string) {
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop,
    start,
    async restart(mode) {
      // Not pg_ctl restart: without -l the new postmaster would hold our pipe open.
      await runAsync('pg_ctl', stopArgs(mode));
      await runAsync('pg_ctl', startArgs);
    },
    destroy() {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
