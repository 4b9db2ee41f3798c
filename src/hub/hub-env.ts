/**
 * The Hugging Face environment variables, read the way huggingface_hub (Python) reads them,
 * so a cache filled by either client is found by the other.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubEnv {
  /** The hub cache root: the folder holding models--owner--name/. */
  cacheDir: string;
  endpoint: string;
  token: string | undefined;
  offline: boolean;
}

/** Empty values count as unset, as in a shell `HF_TOKEN= rerank-mcp`. */
const get = (env: NodeJS.ProcessEnv, name: string): string | undefined => env[name] || undefined;

/** HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (XDG_CACHE_HOME moves ~/.cache, as in both official clients). */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const cache = get(env, 'HF_HUB_CACHE');
  if (cache) return resolve(cache);
  const hfHome = get(env, 'HF_HOME') ?? join(get(env, 'XDG_CACHE_HOME') ?? join(home, '.cache'), 'huggingface');
  return resolve(hfHome, 'hub');
}

export function readHubEnv(env: NodeJS.ProcessEnv = process.env): HubEnv {
  return {
    cacheDir: hubCacheDir(env),
    endpoint: (get(env, 'HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: get(env, 'HF_TOKEN'),
    offline: /^(1|true|yes|on)$/i.test(get(env, 'HF_HUB_OFFLINE') ?? ''),
  };
}
