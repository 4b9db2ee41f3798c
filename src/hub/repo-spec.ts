/** `owner/name[@revision]`: the model names --model accepts besides a local directory. */

export interface RepoSpec {
  repo: string;
  revision: string;
}

export const DEFAULT_REVISION = 'main';

// The Hub's own rules (huggingface_hub validate_repo_id), with the owner made mandatory:
// a bare name is far more likely a mistyped local path than a legacy canonical model.
const PART = /^[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?$/;
const REVISION = /^[\w.-]+(?:\/[\w.-]+)*$/;
const COMMIT = /^[0-9a-f]{40}$/;

export const isCommit = (revision: string): boolean => COMMIT.test(revision);

/** null when `spec` cannot be a repo id, so the caller can say it is neither that nor a directory. */
export function parseRepoSpec(spec: string): RepoSpec | null {
  const at = spec.indexOf('@');
  const repo = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : spec.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p) && !p.includes('--') && !p.includes('..'))) return null;
  if (repo.endsWith('.git')) return null;
  if (!REVISION.test(revision) || revision.split('/').some((s) => s === '.' || s === '..')) return null;
  return { repo, revision };
}
