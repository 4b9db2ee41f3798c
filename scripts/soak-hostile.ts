/**
 * Hostile-input soak (issue 15): a live HTTP server on loopback, on a copy of the tiny model,
 * takes the hostile inputs one after another from a separate process while this process times
 * another client's small score_pair calls. It prints the small calls' p50, p99 and worst latency
 * measured alone, then under the hostile inputs, and their ratio; and how long each hostile call
 * took to be answered or refused.
 *
 *   npm run soak                 # build, then run (about 1-3 minutes)
 *   npm run soak -- --model DIR  # another model directory (copied; e.g. the unpacked MiniLM-L6)
 *
 * Hostile inputs: 20 documents x 100 000 characters of 99-letter words ending outside the
 * vocabulary, chunked; 1000 such documents (~100 MB body, under the default --max-body-mb 128)
 * chunked, over the default --max-call-tokens; the same in truncate mode; a 100 MB
 * tokenizer.json written into the watched model directory (then restored).
 * Bounded: each phase has a deadline and the whole run stops after --max-seconds.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectHttp, startHttpServer } from '../test/helpers/mcp.js';
import { TINY_CE } from '../test/helpers/fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: TINY_CE },
    attack: { type: 'string' },
    url: { type: 'string' },
    dir: { type: 'string' },
    'max-seconds': { type: 'string', default: '300' },
    baseline: { type: 'string', default: '40' },
    only: { type: 'string' },
  },
});

const hostile = (chars: number): string => `${'qzx'.repeat(33)}\uA66E `.repeat(Math.ceil(chars / 101)).slice(0, chars);
const QUERY = 'where is hybrid search implemented?';
const SMALL_DOC = 'def hybrid_search(query, k): combines BM25 and dense retrieval scores with reciprocal rank fusion';

/** Child process: one hostile input against the server; prints one JSON line. */
async function attack(name: string, url: string, dir: string): Promise<void> {
  const started = performance.now();
  let outcome = 'answered';
  if (name === 'tokenizer-json') {
    const path = join(dir, 'tokenizer.json');
    const original = readFileSync(path);
    writeFileSync(path, Buffer.alloc(100 * 1024 * 1024, 0x20));
    await sleep(4000); // the watcher waits for 1 s of quiet, then reloads (and refuses the file)
    writeFileSync(path, original);
    await sleep(3000);
  } else {
    const client = await connectHttp(url);
    const count = name === 'wordpiece-20' ? 20 : 1000;
    const documents = Array.from({ length: count }, (_, i) => `${i} ${hostile(100_000 - 6)}`);
    const mode = name === 'huge-truncate' ? 'truncate' : 'chunk';
    try {
      const res = await client.callTool({ name: 'rerank', arguments: { query: QUERY, documents, long_documents: mode, return_documents: false } }, undefined, { timeout: 600_000 });
      if (res.isError) outcome = `refused: ${JSON.stringify(res.content).slice(0, 160)}`;
    } catch (err) {
      outcome = `error: ${(err as Error).message.slice(0, 160)}`;
    }
    await client.close();
  }
  process.stdout.write(`${JSON.stringify({ name, ms: Math.round(performance.now() - started), outcome })}\n`);
}

function runAttack(name: string, url: string, dir: string): Promise<string> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--attack', name, '--url', url, '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('exit', () => {
      clearTimeout(timer);
      resolvePromise(out.trim() || JSON.stringify({ name, outcome: 'no answer in 240 s (killed)' }));
    });
  });
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const summary = (xs: number[]) => ({ n: xs.length, p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), worst: Math.max(...xs) });

async function main(): Promise<void> {
  const deadline = Date.now() + Number(values['max-seconds']) * 1000;
  const dir = join(mkdtempSync(join(tmpdir(), 'rerank-soak-')), 'model');
  cpSync(values.model!, dir, { recursive: true });
  const server = await startHttpServer(['--host', '127.0.0.1', '--model', dir, '--cache-size', '0']);
  if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(server.url)) throw new Error(`server is not on loopback: ${server.url}`);
  const small = await connectHttp(server.url);
  const time = async (i: number): Promise<number> => {
    const t = performance.now();
    const res = await small.callTool({ name: 'score_pair', arguments: { query: QUERY, document: `${SMALL_DOC} ${i}` } });
    if (res.isError) throw new Error(`small call failed: ${JSON.stringify(res.content)}`);
    return performance.now() - t;
  };
  try {
    await time(-1);
    const alone: number[] = [];
    for (let i = 0; i < Number(values.baseline); i++) alone.push(await time(i));
    const under: number[] = [];
    const attacks: string[] = [];
    const failures: string[] = [];
    const only = values.only ? values.only.split(',') : null;
    for (const name of ['wordpiece-20', 'huge-chunk', 'huge-truncate', 'tokenizer-json']) {
      if (Date.now() > deadline || server.child.exitCode !== null) break;
      if (only && !only.includes(name)) continue;
      let done = false;
      const result = runAttack(name, server.url, dir).then((r) => {
        done = true;
        return r;
      });
      let i = 0;
      const from = under.length;
      while (!done && Date.now() < deadline) {
        try {
          under.push(await time(1000 + under.length));
        } catch (err) {
          failures.push(`${name}: ${(err as Error).message.slice(0, 200)}`);
          if (server.child.exitCode !== null) break;
        }
        await sleep(20 + (i++ % 5) * 10);
      }
      const during = under.slice(from);
      attacks.push(`${await result} small calls during it: ${during.length ? `n=${during.length} worst ${Math.max(...during).toFixed(0)} ms` : 'none'}`);
    }
    const a = summary(alone);
    const u = summary(under);
    const fmt = (s: ReturnType<typeof summary>) => `n=${s.n} p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, worst ${s.worst.toFixed(0)} ms`;
    console.log(`model: ${values.model}   load average: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`small calls alone:          ${fmt(a)}`);
    console.log(`small calls under hostile:  ${fmt(u)}`);
    console.log(`ratio under/alone: p50 ${(u.p50 / a.p50).toFixed(1)}x, p99 ${(u.p99 / a.p99).toFixed(1)}x, worst ${(u.worst / a.worst).toFixed(1)}x`);
    for (const line of attacks) console.log(`hostile: ${line}`);
    for (const line of failures) console.log(`small call FAILED: ${line}`);
    if (server.child.exitCode !== null) console.log(`server EXITED (${server.child.exitCode}): ${server.stderr().slice(-600)}`);
    const refusals = server.stderr().split('\n').filter((l) => /tokenizer|reload/.test(l));
    for (const line of refusals) console.log(`server: ${line.slice(0, 240)}`);
    console.log(`target: worst small call <= 1000 ms on the tiny model: ${u.worst <= 1000 ? 'met' : 'NOT met'}`);
  } finally {
    await small.close().catch(() => undefined);
    await server.stop();
    rmSync(dirname(dir), { recursive: true, force: true });
  }
}

if (values.attack) await attack(values.attack, values.url!, values.dir!);
else await main();
