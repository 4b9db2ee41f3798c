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

/** postgres:// and postgresql:// name a PostgreSQL database rather than a file. */
export const isPostgresUrl = (value: string): boolean => /^postgres(ql)?:\/\//i.test(value);
const isUrl = isPostgresUrl;

/** A database location fit to print: a URL's password replaced by ***. */
export function maskUrl(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const parsed = new URL(location);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return location.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

/**
 * --db wins over RERANK_FEEDBACK_DB, which wins over the default; an empty value counts as
 * unset. A file path is made absolute; a postgres:// URL is kept as it is.
 */
export function resolveDbPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag || env[DB_ENV];
  if (chosen) return isUrl(chosen) ? chosen : path.resolve(chosen);
  return defaultDbPath(env);
}
