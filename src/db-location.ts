/**
 * Where the feedback database lives: the platform's per-user data directory by default, so
 * labels accumulate across sessions and projects without any setup.
 */
import { homedir } from 'node:os';
import path from 'node:path';

export const DB_ENV = 'RERANK_FEEDBACK_DB';

const APP_DIR = 'rerank-mcp';
const FILE_NAME = 'feedback.db';

/** The per-user default; `platform` and `home` are parameters only so every branch can be tested anywhere. */
export function defaultDbPath(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  if (platform === 'win32') {
    // path.win32 explicitly, so the Windows layout comes out right when tested on another OS.
    const base = env.LOCALAPPDATA || path.win32.join(home, 'AppData', 'Local');
    return path.win32.join(base, APP_DIR, FILE_NAME);
  }
  if (platform === 'darwin') return path.posix.join(home, 'Library', 'Application Support', APP_DIR, FILE_NAME);
  // The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
  const xdg = env.XDG_DATA_HOME;
  const base = xdg && path.posix.isAbsolute(xdg) ? xdg : path.posix.join(home, '.local', 'share');
  return path.posix.join(base, APP_DIR, FILE_NAME);
}

/** --db wins over RERANK_FEEDBACK_DB, which wins over the default; an empty value counts as unset. */
export function resolveDbPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return path.resolve(flag);
  const fromEnv = env[DB_ENV];
  if (fromEnv) return path.resolve(fromEnv);
  return defaultDbPath(env);
}
