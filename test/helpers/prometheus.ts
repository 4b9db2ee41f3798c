/**
 * A real Prometheus (Debian's `prometheus`, installed by .ci/run) running deploy/prometheus.yml
 * with its targets replaced by the servers a test started, scraping every second, asked through
 * its HTTP query API as a dashboard or an alert would.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from './fixtures.js';
import { freePort } from './net.js';

export const PROMETHEUS_YML = join(REPO_ROOT, 'deploy', 'prometheus.yml');

export function prometheusPath(): string | undefined {
  return spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).stdout.trim() || undefined;
}

export interface PrometheusServer {
  /** The value of an instant query that returns one sample (a sum, a count); undefined when it returns none. */
  query(expr: string): Promise<number | undefined>;
  /** Polls `expr` until `done(value)`, at most `timeoutMs`; returns the last value. */
  until(expr: string, done: (value: number | undefined) => boolean, timeoutMs?: number): Promise<number | undefined>;
  stop(): Promise<void>;
}

export async function startPrometheus(targets: string[]): Promise<PrometheusServer> {
  const bin = prometheusPath();
  if (!bin) throw new Error('prometheus is not installed: apt-get install -y --no-install-recommends prometheus (.ci/run does)');
  const dir = mkdtempSync(join(tmpdir(), 'rerank-prometheus-'));
  const config = parse(readFileSync(PROMETHEUS_YML, 'utf8'));
  config.global.scrape_interval = '1s';
  config.scrape_configs[0].static_configs = [{ targets }];
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const child = spawn(bin, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr.on('data', (d) => (output = (output + d).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${output}`);
    const ready = await fetch(`${base}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`prometheus not ready after 30 s: ${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const query = async (expr: string) => {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: { value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
    const sample = body.data.result[0];
    return sample === undefined ? undefined : Number(sample.value[1]);
  };
  return {
    query,
    async until(expr, done, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      let value: number | undefined;
      while (Date.now() < end) {
        value = await query(expr);
        if (done(value)) return value;
        await new Promise((r) => setTimeout(r, 300));
      }
      return value;
    },
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
