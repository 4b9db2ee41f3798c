/**
 * `rerank-mcp client-config`: the printed entries have the client's shape and absolute paths,
 * and --write merges into the client's file without losing what was there. (Launching each
 * printed entry from an installed package is in package.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { runCli } from './helpers/run-cli.js';
import { CLI, TINY_CE } from './helpers/fixtures.js';
import { configFileFor } from '../src/commands/client-config.js';

const work = mkdtempSync(join(tmpdir(), 'rerank-client-config-'));

test('JSON clients get mcpServers or servers with absolute node and CLI paths and the DB outside any workspace', async () => {
  for (const [client, key] of [['claude-desktop', 'mcpServers'], ['cursor', 'mcpServers'], ['vscode', 'servers']] as const) {
    const res = await runCli(['client-config', client, '--model', TINY_CE], { env: { RERANK_FEEDBACK_DB: '' } });
    assert.equal(res.code, 0, res.stderr);
    const parsed = JSON.parse(res.stdout);
    assert.deepEqual(Object.keys(parsed), [key]);
    const entry = parsed[key].rerank;
    assert.equal(entry.command, process.execPath);
    assert.deepEqual(entry.args, [CLI]);
    if (client === 'vscode') assert.equal(entry.type, 'stdio');
    assert.equal(entry.env.RERANK_MODEL, TINY_CE);
    assert.ok(isAbsolute(entry.env.RERANK_FEEDBACK_DB));
    assert.doesNotMatch(entry.env.RERANK_FEEDBACK_DB, /workspaceFolder|\.vscode/);
  }
  const code = await runCli(['client-config', 'claude-code', '--db', join(work, 'f.db')]);
  assert.equal(code.code, 0, code.stderr);
  assert.match(code.stdout.trim(), new RegExp(`^claude mcp add --transport stdio (--env \\S+ )+--scope user rerank -- ${process.execPath} ${CLI}$`));
  assert.ok(code.stdout.includes(`--env RERANK_FEEDBACK_DB=${join(work, 'f.db')}`));
  assert.ok(code.stdout.includes('--env RERANK_MODEL=cross-encoder/ms-marco-MiniLM-L6-v2'));
});

test('--write keeps the other servers and keys, backs the old file up, and replaces only its own entry', async () => {
  const file = join(work, 'cursor', 'mcp.json');
  mkdirSync(join(work, 'cursor'));
  const before = { mcpServers: { other: { command: 'other-server', args: ['--x'] }, rerank: { command: 'stale' } }, theme: 'dark' };
  writeFileSync(file, JSON.stringify(before, null, 2));
  const res = await runCli(['client-config', 'cursor', '--write', '--config-file', file, '--model', TINY_CE]);
  assert.equal(res.code, 0, res.stderr);
  const after = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(after.mcpServers.other, before.mcpServers.other);
  assert.equal(after.theme, 'dark');
  assert.equal(after.mcpServers.rerank.command, process.execPath);
  const backups = readdirSync(join(work, 'cursor')).filter((f) => f.endsWith('.bak'));
  assert.equal(backups.length, 1);
  assert.deepEqual(JSON.parse(readFileSync(join(work, 'cursor', backups[0]), 'utf8')), before);
});

test('--write finds the client file from HOME / APPDATA, and creates it when missing', async () => {
  const home = join(work, 'home');
  const res = await runCli(['client-config', 'vscode', '--write'], { env: { HOME: home, XDG_CONFIG_HOME: '' } });
  assert.equal(res.code, 0, res.stderr);
  const file = join(home, '.config', 'Code', 'User', 'mcp.json');
  assert.equal(res.stdout.trim(), file);
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).servers.rerank.type, 'stdio');
  // every OS's standard location, from the same environment variables the clients read
  assert.equal(configFileFor('claude-desktop', { HOME: '/h' }, 'darwin'), '/h/Library/Application Support/Claude/claude_desktop_config.json');
  assert.equal(configFileFor('claude-desktop', { APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, 'win32'), 'C:\\Users\\u\\AppData\\Roaming\\Claude\\claude_desktop_config.json');
  assert.equal(configFileFor('claude-desktop', { HOME: '/h' }, 'linux'), '/h/.config/Claude/claude_desktop_config.json');
  assert.equal(configFileFor('cursor', { HOME: '/h' }, 'linux'), '/h/.cursor/mcp.json');
  assert.equal(configFileFor('vscode', { HOME: '/h' }, 'darwin'), '/h/Library/Application Support/Code/User/mcp.json');
  assert.equal(configFileFor('vscode', { APPDATA: 'C:\\A' }, 'win32'), 'C:\\A\\Code\\User\\mcp.json');
  assert.equal(configFileFor('claude-code', { HOME: '/h' }, 'linux'), '/h/.claude.json');
  assert.equal(configFileFor('claude-code', { USERPROFILE: 'C:\\Users\\u' }, 'win32'), 'C:\\Users\\u\\.claude.json');
});

test('--write refuses a malformed file, names it, and leaves it untouched', async () => {
  const dir = join(work, 'bad');
  mkdirSync(dir);
  const file = join(dir, 'claude_desktop_config.json');
  const text = '{ "mcpServers": { "other": { "command": "x" }, } ';
  writeFileSync(file, text);
  const res = await runCli(['client-config', 'claude-desktop', '--write', '--config-file', file]);
  assert.notEqual(res.code, 0);
  const errors = res.stderr.trim().split('\n');
  assert.equal(errors.length, 1, res.stderr);
  assert.ok(errors[0].includes(file), errors[0]);
  assert.match(errors[0], /not valid JSON.*nothing was written/);
  assert.equal(readFileSync(file, 'utf8'), text);
  assert.deepEqual(readdirSync(dir), ['claude_desktop_config.json']);
});

test("claude-code --write merges a user-scope entry into ~/.claude.json, keeping Claude Code's own state", async () => {
  const home = mkdtempSync(join(tmpdir(), 'rerank-claude-home-'));
  const file = join(home, '.claude.json');
  const state = { numStartups: 7, projects: { '/work/x': { mcpServers: { local: { type: 'stdio', command: 'x', args: [] } } } }, mcpServers: { other: { type: 'stdio', command: 'other-server', args: ['--flag'] } } };
  writeFileSync(file, JSON.stringify(state));
  const res = await runCli(['client-config', 'claude-code', '--write', '--db', join(home, 'f.db')], { env: { HOME: home, USERPROFILE: home } });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), file);
  const written = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(written.numStartups, 7);
  assert.deepEqual(written.projects, state.projects);
  assert.deepEqual(written.mcpServers.other, state.mcpServers.other);
  assert.equal(written.mcpServers.rerank.type, 'stdio');
  assert.equal(written.mcpServers.rerank.command, process.execPath);
  assert.equal(written.mcpServers.rerank.env.RERANK_FEEDBACK_DB, join(home, 'f.db'));
  const backups = readdirSync(home).filter((f) => f.endsWith('.bak'));
  assert.equal(backups.length, 1);
  assert.deepEqual(JSON.parse(readFileSync(join(home, backups[0]), 'utf8')), state);
});
