/**
 * What a user gets without a published package: `npm pack` makes a tarball, installed
 * globally into a temp prefix (ONNXRUNTIME_NODE_INSTALL=skip, as the docs say), from a folder outside the
 * checkout. Then exactly mcp.json's command, and each `client-config` entry the installed CLI
 * prints, are launched as a client would and list the four tools. Dependencies come from the
 * npm cache or registry, as for a real user. One pack and one install for the whole file:
 * they are the slow part.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { REPO_ROOT, TEST_DAEMON_DIR, TINY_CE } from './helpers/fixtures.js';

interface LaunchEntry {
  command: string;
  args?: string[];
  env?: Record<string, string>;
}

const TOOLS = ['feedback', 'model_info', 'rerank', 'score_pair'];

/** Words of a POSIX command line as client-config quotes them (plain words and '…' quoting). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)) words.push(m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]);
  return words;
}

/** `claude mcp add [options] <name> -- <command> [args...]` back into the entry Claude Code would launch. */
function parseClaudeMcpAdd(line: string): LaunchEntry & { name: string; scope?: string } {
  const words = shellWords(line.trim());
  assert.deepEqual(words.slice(0, 3), ['claude', 'mcp', 'add']);
  const dashes = words.indexOf('--');
  assert.ok(dashes > 0, line);
  const env: Record<string, string> = {};
  let scope: string | undefined;
  const positional: string[] = [];
  for (let i = 3; i < dashes; i++) {
    const w = words[i];
    if (w === '--env' || w === '-e') {
      const [k, ...v] = words[++i].split('=');
      env[k] = v.join('=');
    } else if (w === '--scope' || w === '-s') scope = words[++i];
    else if (w === '--transport' || w === '-t') assert.equal(words[++i], 'stdio');
    else positional.push(w);
  }
  assert.equal(positional.length, 1, `one server name before "--": ${line}`);
  return { name: positional[0], scope, command: words[dashes + 1], args: words.slice(dashes + 2), env };
}

/** Launches an entry as an MCP client does, from `cwd`, and lists its tools; model_info proves the model loaded. */
async function listTools(entry: LaunchEntry, env: Record<string, string>, cwd: string): Promise<{ tools: string[]; state: unknown }> {
  const transport = new StdioClientTransport({ command: entry.command, args: entry.args ?? [], env, cwd, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const client = new Client({ name: 'install-test', version: '0' });
  try {
    await client.connect(transport);
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    const info = await client.callTool({ name: 'model_info', arguments: {} });
    return { tools, state: (info.structuredContent as { state?: unknown } | undefined)?.state };
  } catch (err) {
    throw new Error(`${entry.command} ${(entry.args ?? []).join(' ')}: ${(err as Error).message}; stderr: ${stderr}`);
  } finally {
    await client.close();
  }
}

test('npm pack → npm install -g with mcp.json\'s env → mcp.json and every client-config entry launch and list the tools', { timeout: 15 * 60_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'rerank-pack-'));
  const mcpJson = JSON.parse(readFileSync(join(REPO_ROOT, 'mcp.json'), 'utf8')) as { mcpServers: Record<string, LaunchEntry> };
  const entry = mcpJson.mcpServers.rerank;
  assert.equal(entry.command, 'rerank-mcp', 'mcp.json launches the installed binary, not npx or npm');
  assert.ok(!Object.keys(entry.env ?? {}).some((k) => /^ONNXRUNTIME_NODE_INSTALL$/i.test(k)), "mcp.json's runtime env carries no install-time variable");
  // The user's install runs outside the checkout, skipping the CUDA download as the docs say.
  const outside = join(work, 'elsewhere');
  mkdirSync(outside);
  const quiet = { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(ONNXRUNTIME_NODE_INSTALL|npm_config_onnxruntime)/i.test(k))) as Record<string, string>;
  const installEnv = { ...baseEnv, ...quiet, ONNXRUNTIME_NODE_INSTALL: 'skip' };

  execFileSync('npm', ['pack', '--pack-destination', work], { cwd: REPO_ROOT, env: { ...process.env, ...quiet }, stdio: ['ignore', 'ignore', 'pipe'] });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
  const listing = execFileSync('tar', ['-tzf', join(work, tarball)], { encoding: 'utf8' });
  assert.match(listing, /package\/dist\/cli\.js/);
  assert.match(listing, /package\/mcp\.json/);
  assert.doesNotMatch(listing, /package\/test\//);
  assert.doesNotMatch(listing, /package\/src\//);
  // The tested versions: the lock file travels as npm-shrinkwrap.json, which a global install obeys.
  assert.match(listing, /package\/npm-shrinkwrap\.json/);
  assert.ok(!readdirSync(REPO_ROOT).includes('npm-shrinkwrap.json'), 'postpack removes the shrinkwrap from the checkout');
  // Every file the help text names is in the package.
  const help = execFileSync(process.execPath, [join(REPO_ROOT, 'dist', 'cli.js'), '--help'], { encoding: 'utf8' }) + execFileSync(process.execPath, [join(REPO_ROOT, 'dist', 'cli.js'), 'daemon', '--help'], { encoding: 'utf8' });
  const named = [...new Set(help.match(/docs\/[\w.-]+\.md/g) ?? [])];
  assert.ok(named.length > 0, 'the help names docs/daemon.md');
  for (const file of named) assert.ok(listing.includes(`package/${file}`), `${file}, which --help names, is in the tarball`);
  // finetune runs python/finetune.py from the installed package: every module of ours it imports, and they import, is there.
  const ours = new Set(readdirSync(join(REPO_ROOT, 'python')).filter((f) => f.endsWith('.py')).map((f) => f.slice(0, -3)));
  for (const mod of ours) {
    for (const [, imported] of readFileSync(join(REPO_ROOT, 'python', `${mod}.py`), 'utf8').matchAll(/^\s*from (\w+) import/gm)) {
      if (ours.has(imported)) assert.ok(listing.includes(`package/python/${imported}.py`), `python/${imported}.py, which python/${mod}.py imports, is in the tarball`);
    }
  }

  const prefix = join(work, 'global');
  const install = spawnSync('npm', ['install', '-g', '--prefer-offline', '--prefix', prefix, join(work, tarball)], { cwd: outside, env: installEnv, encoding: 'utf8' });
  assert.equal(install.status, 0, install.stderr);
  t.diagnostic(`installed ${tarball} into ${prefix}`);
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
  for (const dep of ['onnxruntime-node', '@modelcontextprotocol/sdk', 'better-sqlite3']) {
    const installed = JSON.parse(readFileSync(join(prefix, 'lib', 'node_modules', 'rerank-mcp', 'node_modules', dep, 'package.json'), 'utf8')) as { version: string };
    assert.equal(installed.version, lock.packages[`node_modules/${dep}`].version, `${dep}: the installed version is the lock file's`);
  }
  const bin = join(prefix, 'bin');
  const installedCli = realpathSync(join(bin, 'rerank-mcp'));
  assert.ok(installedCli.startsWith(realpathSync(prefix)), installedCli);

  const score = spawnSync(join(bin, 'rerank-mcp'), ['score', '--model', TINY_CE], { cwd: outside, input: '{"query":"q","document":"d"}\n', encoding: 'utf8' });
  assert.equal(score.status, 0, score.stderr);
  assert.equal(typeof JSON.parse(score.stdout).score, 'number');

  // finetune from the installed package exports a servable model (its Python modules are all there).
  if (process.env.RERANK_PYTHON) {
    const base = join(work, 'tiny-base');
    execFileSync(process.env.RERANK_PYTHON, [join(REPO_ROOT, 'scripts', 'make_tiny_base.py'), '--tokenizer', TINY_CE, '--out', base], { env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const exported = spawnSync(join(bin, 'rerank-mcp'), ['finetune', '--epochs', '0', '--base', base, '--out', join(work, 'exported'), '--fuse', 'off', '--python', process.env.RERANK_PYTHON], { cwd: outside, encoding: 'utf8' });
    assert.equal(exported.status, 0, exported.stderr.slice(-2000));
    const scored = spawnSync(join(bin, 'rerank-mcp'), ['score', '--model', join(work, 'exported')], { cwd: outside, input: '{"query":"q","document":"d"}\n', encoding: 'utf8' });
    assert.equal(scored.status, 0, scored.stderr);
  } else t.diagnostic('RERANK_PYTHON is not set: finetune from the installed package not tried');

  // 1. exactly mcp.json's command, found on PATH as a global install puts it there; only the model and DB are this test's.
  const launchEnv = { ...baseEnv, ...entry.env, PATH: `${bin}:${process.env.PATH}`, RERANK_MODEL: TINY_CE, RERANK_FEEDBACK_DB: join(work, 'mcp-json.db') };
  assert.deepEqual(await listTools(entry, launchEnv, outside), { tools: TOOLS, state: 'ready' });

  // 2. every client-config entry, launched with its own env and a PATH that holds neither node nor rerank-mcp, as GUI apps may.
  const noPath = join(work, 'empty-path');
  mkdirSync(noPath);
  for (const client of ['claude-desktop', 'cursor', 'vscode', 'claude-code']) {
    const printed = spawnSync(join(bin, 'rerank-mcp'), ['client-config', client, '--model', TINY_CE, '--db', join(work, `${client}.db`)], { cwd: outside, encoding: 'utf8' });
    assert.equal(printed.status, 0, printed.stderr);
    let launch: LaunchEntry;
    if (client === 'claude-code') {
      const added = parseClaudeMcpAdd(printed.stdout);
      assert.equal(added.name, 'rerank');
      assert.equal(added.scope, 'user');
      launch = added;
    } else {
      const json = JSON.parse(printed.stdout);
      launch = client === 'vscode' ? json.servers.rerank : json.mcpServers.rerank;
      if (client === 'vscode') assert.equal((launch as { type?: string }).type, 'stdio');
    }
    assert.ok(isAbsolute(launch.command), launch.command);
    assert.equal(realpathSync(launch.args![0]), installedCli, 'the entry runs the installed CLI');
    assert.equal(launch.env!.RERANK_FEEDBACK_DB, join(work, `${client}.db`));
    // The test's own daemon directory (stopped at exit), never the user's: the entry carries no RERANK_DAEMON_DIR.
    const env = { ...launch.env!, PATH: noPath, HOME: process.env.HOME ?? work, RERANK_DAEMON_DIR: TEST_DAEMON_DIR };
    assert.deepEqual(await listTools(launch, env, outside), { tools: TOOLS, state: 'ready' }, client);
  }
});
