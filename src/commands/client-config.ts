/**
 * `rerank-mcp client-config <client> [--write]`: the entry that makes an MCP client launch
 * this installation. GUI apps (Claude Desktop, Cursor, VS Code) often start without the
 * shell's PATH, so the entry names node and the CLI by absolute path rather than relying on
 * a `rerank-mcp` or `npx` found on PATH. The feedback database is named by absolute path in
 * the per-user data directory, never inside a workspace where it would be committed.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config.js';
import { resolveDbPath } from '../feedback/db-path.js';
import { DEFAULT_MODEL } from '../hub/resolve-model.js';
import { log } from '../log.js';
import { spliceMember } from './json-splice.js';

export const CLIENTS = ['claude-desktop', 'cursor', 'vscode', 'claude-code'] as const;
export type Client = (typeof CLIENTS)[number];

const USAGE = `rerank-mcp client-config <${CLIENTS.join('|')}> [--write] [--model DIR|REPO] [--variant fp32|int8] [--db PATH] [--name NAME] [--config-file PATH]`;

const HELP = `Print the entry that makes an MCP client launch this rerank-mcp installation, or merge it into the client's config file.

Usage: ${USAGE}

  claude-desktop, cursor   JSON with "mcpServers", to paste into the client's config file
  vscode                   JSON with "servers" ("type": "stdio"), for VS Code's user mcp.json
  claude-code              the "claude mcp add" command line (user scope); --write puts the same
                           entry in ~/.claude.json's top-level "mcpServers" (quit Claude Code first)

The entry runs node (${process.execPath}) on this installation's CLI by absolute path, so it
works when the client does not inherit your shell's PATH.

Options:
  --write              merge the entry into the client's config file: only that entry changes,
                       the rest of the file is kept byte for byte, and so are its mode and
                       owner; a symlinked file is written at its target; the old file is
                       copied to <file>.<time>.bak first; a file that is not valid JSON, or
                       not a regular file, is refused.
  --config-file PATH   the file --write merges into (default: the client's standard location:
                       ${describeLocations()})
  --model DIR|REPO     model for the server (env RERANK_MODEL; default ${DEFAULT_MODEL})
  --variant fp32|int8  ONNX variant (env RERANK_VARIANT; default fp32)
  --db PATH            feedback database (env RERANK_FEEDBACK_DB; default ${resolveDbPath()})
  --name NAME          the server's name in the client (default rerank)
  --help               show this help
`;

export interface ServerEntry {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** The installed CLI, by its real path: a global install reaches it through a bin symlink. */
export function installedCli(): string {
  return realpathSync(fileURLToPath(new URL('../cli.js', import.meta.url)));
}

export function serverEntry(options: { model?: string; variant?: string; db?: string }, env: NodeJS.ProcessEnv = process.env): ServerEntry {
  const given = options.model ?? env.RERANK_MODEL;
  // A directory is made absolute (the client starts the server in a folder of its own choosing); a repo id stays as it is.
  const model = given === undefined || given === '' ? DEFAULT_MODEL : existsSync(given) ? path.resolve(given) : given;
  const entryEnv: Record<string, string> = {
    RERANK_MODEL: model,
    RERANK_VARIANT: options.variant ?? env.RERANK_VARIANT ?? 'fp32',
    RERANK_FEEDBACK_DB: resolveDbPath(options.db, env),
  };
  // A model cache moved by the user must be the one the client's server looks in too.
  for (const name of ['HF_HUB_CACHE', 'HF_HOME', 'HF_ENDPOINT', 'HF_HUB_OFFLINE'] as const) if (env[name]) entryEnv[name] = env[name]!;
  return { command: process.execPath, args: [installedCli()], env: entryEnv };
}

/** The JSON a client reads: its top-level key holding the servers, and the entry in that client's shape. */
export function clientJson(client: Client, name: string, entry: ServerEntry): { key: string; value: Record<string, unknown> } {
  if (client === 'vscode') return { key: 'servers', value: { type: 'stdio', ...entry } };
  // What `claude mcp add --scope user` itself writes into ~/.claude.json.
  if (client === 'claude-code') return { key: 'mcpServers', value: { type: 'stdio', ...entry } };
  return { key: 'mcpServers', value: { ...entry } };
}

/** POSIX shell quoting: plain words stay as they are, anything else goes in single quotes. */
const shellQuote = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/**
 * `claude mcp add` takes its options before the server name and the server's command after
 * `--`; `--scope user` makes the server available in every project.
 */
export function claudeCodeCommand(name: string, entry: ServerEntry): string {
  const env = Object.entries(entry.env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
  return ['claude', 'mcp', 'add', '--transport', 'stdio', ...env, '--scope', 'user', name, '--', entry.command, ...entry.args].map(shellQuote).join(' ');
}

/** The client's own config file on this OS, from HOME / APPDATA / XDG_CONFIG_HOME as the client reads them. */
export function configFileFor(client: Client, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const home = (platform === 'win32' ? env.USERPROFILE : env.HOME) || homedir();
  const appData = env.APPDATA || p.join(home, 'AppData', 'Roaming');
  const xdgConfig = env.XDG_CONFIG_HOME && p.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : p.join(home, '.config');
  const userDir = (app: string) => (platform === 'win32' ? p.join(appData, app) : platform === 'darwin' ? p.join(home, 'Library', 'Application Support', app) : p.join(xdgConfig, app));
  switch (client) {
    case 'claude-desktop':
      return p.join(userDir('Claude'), 'claude_desktop_config.json');
    case 'cursor':
      return p.join(home, '.cursor', 'mcp.json');
    case 'vscode':
      return p.join(userDir('Code'), 'User', 'mcp.json');
    case 'claude-code':
      return p.join(home, '.claude.json');
  }
}

function describeLocations(): string {
  return CLIENTS.map((c) => `${c}: ${configFileFor(c)}`).join(', ');
}

/**
 * Puts `name` under `key` in the JSON file, changing nothing else in it: the entry is spliced
 * into the original text (json-splice.ts), the file keeps its mode and owner (~/.claude.json is
 * 0600 and holds tokens), and a symlink (dotfile managers) is kept and its target written. The
 * previous file is copied aside first, under a name no earlier backup has, and the new one is
 * written to a temporary file beside the target, synced, and renamed over it, so an
 * interrupted write never leaves a half-written config. Returns the backup's path, if there
 * was a file to back up.
 */
export function mergeIntoFile(file: string, key: string, name: string, value: Record<string, unknown>, now: Date = new Date()): string | undefined {
  const target = followLinks(file);
  const existing = statIfExists(target);
  if (existing && !existing.isFile()) {
    throw new ConfigError(`${file}${target !== file ? ` (a link to ${target})` : ''} is ${kindOf(existing)}, not a regular file; nothing was written: point --config-file at the JSON file itself`);
  }
  const text = existing ? readFileSync(target, 'utf8') : '';
  let next: string;
  if (text.trim() === '') {
    next = JSON.stringify({ [key]: { [name]: value } }, null, 2) + '\n';
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${file} is not valid JSON (${(err as Error).message}); nothing was written: fix the file (comments are not supported here), or add the entry by hand from "rerank-mcp client-config" without --write`);
    }
    if (!isObject(parsed)) throw new ConfigError(`${file} does not hold a JSON object; nothing was written: fix the file, or add the entry by hand`);
    if (parsed[key] !== undefined && !isObject(parsed[key])) throw new ConfigError(`${file}: "${key}" is not an object; nothing was written: fix the file, or add the entry by hand`);
    next = spliceMember(text, key, name, value);
  }
  mkdirSync(path.dirname(target), { recursive: true });
  const backup = existing ? backUp(file, target, existing, now) : undefined;
  writeAtomically(file, target, next, existing);
  return backup;
}

/** The file a chain of symlinks ends at (which may not exist yet); `file` itself when it is no link. */
function followLinks(file: string): string {
  let current = file;
  for (let hops = 0; hops < 40; hops++) {
    let stat;
    try {
      stat = lstatSync(current);
    } catch {
      return current;
    }
    if (!stat.isSymbolicLink()) return current;
    current = path.resolve(path.dirname(current), readlinkSync(current));
  }
  throw new ConfigError(`${file}: too many levels of symbolic links; nothing was written: fix the link`);
}

function statIfExists(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`${file} cannot be read (${(err as Error).message}); nothing was written`);
  }
}

function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a named pipe (FIFO)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** The file's owner, where it differs from who writes it now (a config edited with sudo, say). */
function ownerToKeep(stat: Stats): { uid: number; gid: number } | undefined {
  if (process.getuid === undefined || process.getgid === undefined) return undefined;
  return stat.uid !== process.getuid() || stat.gid !== process.getgid() ? { uid: stat.uid, gid: stat.gid } : undefined;
}

/** Copies the current file beside the path the user knows, under a name no other backup has, with the file's mode and owner. */
function backUp(file: string, target: string, stat: Stats, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  for (let n = 1; ; n++) {
    const backup = `${file}.${stamp}${n === 1 ? '' : `-${n}`}.bak`;
    try {
      copyFileSync(target, backup, constants.COPYFILE_EXCL);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new ConfigError(`cannot back ${file} up to ${backup} (${(err as Error).message}); nothing was written`);
    }
    chmodSync(backup, stat.mode & 0o7777);
    const owner = ownerToKeep(stat);
    if (owner) {
      try {
        chownSync(backup, owner.uid, owner.gid);
      } catch {
        // the backup stays the writer's, with the file's mode: no wider than the original
      }
    }
    return backup;
  }
}

function writeAtomically(file: string, target: string, text: string, existing: Stats | undefined): void {
  const mode = existing ? existing.mode & 0o7777 : 0o600;
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o600);
    const owner = existing ? ownerToKeep(existing) : undefined;
    if (owner) {
      try {
        fchownSync(fd, owner.uid, owner.gid);
      } catch (err) {
        throw new ConfigError(`${file} belongs to uid ${owner.uid} gid ${owner.gid}, which this user cannot give the new file (${(err as Error).message}); nothing was written: run client-config as that user`);
      }
    }
    // After the chown, which clears set-id bits; the umask does not apply to fchmod.
    fchmodSync(fd, mode);
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, target);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot write ${target} (${(err as Error).message}); nothing was written`);
  }
  try {
    const dir = openSync(path.dirname(target), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // directories cannot be opened for sync on every platform (Windows); the rename has happened
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function runClientConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        write: { type: 'boolean' },
        'config-file': { type: 'string' },
        model: { type: 'string' },
        variant: { type: 'string' },
        db: { type: 'string' },
        name: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (usage: ${USAGE})`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const client = positionals[0] as Client | undefined;
  if (client === undefined || !CLIENTS.includes(client) || positionals.length > 1) {
    throw new ConfigError(`client-config takes one client: ${CLIENTS.join(', ')} (usage: ${USAGE})`);
  }
  if (values.variant !== undefined && values.variant !== 'fp32' && values.variant !== 'int8') throw new ConfigError(`--variant: expected one of fp32, int8, got "${values.variant}"`);
  const name = values.name ?? 'rerank';
  const entry = serverEntry({ model: values.model, variant: values.variant, db: values.db }, env);

  if (client === 'claude-code' && !values.write) {
    process.stdout.write(claudeCodeCommand(name, entry) + '\n');
    return 0;
  }
  const { key, value } = clientJson(client, name, entry);
  if (!values.write) {
    process.stdout.write(JSON.stringify({ [key]: { [name]: value } }, null, 2) + '\n');
    return 0;
  }
  const file = path.resolve(values['config-file'] ?? configFileFor(client, env));
  const backup = mergeIntoFile(file, key, name, value);
  // A running Claude Code keeps ~/.claude.json in memory and writes it back, which could drop the entry.
  const restart = client === 'claude-code' ? 'start Claude Code again (quit every running one first if `claude mcp list` does not show it)' : 'restart the client to pick it up';
  log(`wrote "${name}" into ${file}${backup ? ` (the previous file is kept as ${backup})` : ''}; ${restart}`);
  process.stdout.write(file + '\n');
  return 0;
}
