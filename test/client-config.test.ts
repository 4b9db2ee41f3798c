/**
 * `rerank-mcp client-config`: the printed entries have the client's shape and absolute paths,
 * and --write merges into the client's file without losing what was there. (Launching each
 * printed entry from an installed package is in package.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { runCli } from './helpers/run-cli.js';
import { CLI, TINY_CE } from './helpers/fixtures.js';
import { configFileFor, mergeIntoFile } from '../src/commands/client-config.js';
import { spliceMember } from '../src/commands/json-splice.js';

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

/** A ~/.claude.json with what JSON.parse + JSON.stringify would change: a number beyond 2^53, escapes, spacing, a duplicate key. */
const CLAUDE_JSON =
  '{\n    "numStartups": 12345678901234567890,\n    "tip":"caf\\u00e9 \\/ 1.0e+2",\n    "ratio": 1.50,\n' +
  '    "mcpServers": {\n        "other": {"command": "x", "args": []},\n        "rerank": {"command": "stale"}\n    },\n    "dup": 1, "dup": 2\n}\n';

function claudeHome(text = CLAUDE_JSON, mode = 0o600): { home: string; file: string; write: () => ReturnType<typeof runCli> } {
  const home = mkdtempSync(join(tmpdir(), 'rerank-cc-home-'));
  const file = join(home, '.claude.json');
  writeFileSync(file, text);
  chmodSync(file, mode);
  const write = () => runCli(['client-config', 'claude-code', '--write', '--db', join(home, 'f.db')], { env: { HOME: home, USERPROFILE: home } });
  return { home, file, write };
}

test('--write changes only its entry: the rest of the file stays byte for byte (12345678901234567890 included)', async () => {
  const { file, write } = claudeHome();
  const res = await write();
  assert.equal(res.code, 0, res.stderr);
  const after = readFileSync(file, 'utf8');
  const marker = '"rerank": ';
  const tail = '\n    },\n    "dup"';
  const entryStart = after.indexOf(marker) + marker.length;
  const entryEnd = after.indexOf(tail);
  assert.equal(after.slice(0, entryStart), CLAUDE_JSON.slice(0, CLAUDE_JSON.indexOf(marker) + marker.length));
  assert.equal(after.slice(entryEnd), CLAUDE_JSON.slice(CLAUDE_JSON.indexOf(tail)));
  assert.ok(after.includes('12345678901234567890'), after);
  const entry = JSON.parse(after.slice(entryStart, entryEnd));
  assert.equal(entry.command, process.execPath);
  assert.equal(entry.type, 'stdio');
  // indented like its neighbours
  assert.match(after, /\n {8}"rerank": \{\n {12}"type": "stdio",/);
});

test('--write keeps the mode of a 0600 file holding tokens, and its backup is 0600 too', async () => {
  const { home, file, write } = claudeHome();
  const res = await write();
  assert.equal(res.code, 0, res.stderr);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const backups = readdirSync(home).filter((f) => f.endsWith('.bak'));
  assert.equal(backups.length, 1);
  assert.equal(readFileSync(join(home, backups[0]), 'utf8'), CLAUDE_JSON);
  assert.equal(statSync(join(home, backups[0])).mode & 0o777, 0o600, 'the backup is no more readable than the file');
});

test('--write run by root on a user\'s file keeps its owner', { skip: process.getuid?.() !== 0 && 'needs root to give a file another owner' }, async () => {
  const { home, file, write } = claudeHome();
  chownSync(file, 4321, 4321);
  const res = await write();
  assert.equal(res.code, 0, res.stderr);
  assert.equal(statSync(file).uid, 4321);
  assert.equal(statSync(file).gid, 4321);
  const backup = readdirSync(home).find((f) => f.endsWith('.bak'))!;
  assert.equal(statSync(join(home, backup)).uid, 4321);
});

test('--write twice in the same second keeps two backups', async () => {
  const { home, file } = claudeHome();
  const second = new Date('2026-01-02T03:04:05.000Z');
  mergeIntoFile(file, 'mcpServers', 'rerank', { command: 'one' }, second);
  mergeIntoFile(file, 'mcpServers', 'rerank', { command: 'two' }, new Date(second.getTime() + 900));
  const backups = readdirSync(home).filter((f) => f.endsWith('.bak'));
  assert.equal(backups.length, 2, backups.join(', '));
  assert.ok(backups.some((b) => readFileSync(join(home, b), 'utf8') === CLAUDE_JSON), 'the backup of the original survives');
});

test('--write on a symlinked config (dotfile manager) writes the target and keeps the link', async () => {
  const home = mkdtempSync(join(tmpdir(), 'rerank-cc-link-'));
  mkdirSync(join(home, 'dotfiles'));
  const real = join(home, 'dotfiles', 'claude.json');
  writeFileSync(real, '{"mcpServers": {}}\n');
  chmodSync(real, 0o640);
  symlinkSync(join('dotfiles', 'claude.json'), join(home, '.claude.json'));
  const linked = await runCli(['client-config', 'claude-code', '--write', '--db', join(home, 'f.db')], { env: { HOME: home, USERPROFILE: home } });
  assert.equal(linked.code, 0, linked.stderr);
  assert.ok(lstatSync(join(home, '.claude.json')).isSymbolicLink(), 'the link is still a link');
  assert.equal(JSON.parse(readFileSync(real, 'utf8')).mcpServers.rerank.command, process.execPath);
  assert.equal(statSync(real).mode & 0o777, 0o640);
  assert.deepEqual(readdirSync(join(home, 'dotfiles')), ['claude.json'], 'no temporary or backup file left in the dotfiles repo');
});

test('--write refuses a FIFO at the path at once, in one line', async () => {
  const home = mkdtempSync(join(tmpdir(), 'rerank-cc-fifo-'));
  execFileSync('mkfifo', [join(home, '.claude.json')]);
  const fifo = await runCli(['client-config', 'claude-code', '--write'], { env: { HOME: home, USERPROFILE: home }, timeoutMs: 15_000 });
  assert.equal(fifo.code, 2, fifo.stderr);
  const lines = fifo.stderr.trim().split('\n');
  assert.equal(lines.length, 1, fifo.stderr);
  assert.match(lines[0], /\.claude\.json is a named pipe \(FIFO\), not a regular file; nothing was written/);
});

test('spliceMember adds entries in the style of the file, and on one line in a one-line file', () => {
  assert.equal(spliceMember('{"a":1}', 'mcpServers', 'rerank', { c: 1 }), '{"a":1,"mcpServers":{"rerank":{"c":1}}}');
  assert.equal(spliceMember('{"mcpServers": {}, "z": 0}', 'mcpServers', 'rerank', { c: 1 }), '{"mcpServers": {"rerank":{"c":1}}, "z": 0}');
  assert.equal(spliceMember('{\r\n  "a": 1\r\n}\r\n', 'servers', 'r', { c: [1] }), '{\r\n  "a": 1,\r\n  "servers": {\r\n    "r": {\r\n      "c": [\r\n        1\r\n      ]\r\n    }\r\n  }\r\n}\r\n');
  assert.equal(spliceMember('{\n\t"servers": {\n\t\t"x": [1, {"y": "}"}]\n\t}\n}', 'servers', 'r', { c: 1 }), '{\n\t"servers": {\n\t\t"x": [1, {"y": "}"}],\n\t\t"r": {\n\t\t\t"c": 1\n\t\t}\n\t}\n}');
  assert.equal(spliceMember('{\n  "servers": {\n  }\n}', 'servers', 'r', 1), '{\n  "servers": {\n    "r": 1\n  }\n}');
});
