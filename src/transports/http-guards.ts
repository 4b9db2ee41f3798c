/**
 * Request checks for the HTTP transport: a browser page on another site must not reach a
 * localhost server (DNS rebinding through Host, cross-site fetches through Origin), and
 * with a token configured, nobody without it.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127(\.\d{1,3}){3}$/.test(host);
}

/** The hostname of a Host header value ("[::1]:8080" → "[::1]"). */
function hostnameOf(hostHeader: string): string {
  const match = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader.trim().toLowerCase());
  return match ? match[1] : '';
}

/**
 * Why a request's Host or Origin is refused, or undefined when both are loopback, the bind
 * address or a name in `extraHosts`, or the Origin is one of `corsOrigins` (opted in with
 * --cors-origins).
 */
export function hostProblem(req: Request, extraHosts: readonly string[] = [], corsOrigins: readonly string[] = []): string | undefined {
  const allowed = new Set(extraHosts.map((h) => h.toLowerCase()));
  const ok = (name: string) => isLoopbackHost(name) || allowed.has(name);
  const host = req.headers.host;
  if (!host || !ok(hostnameOf(host))) {
    return `Host ${host ?? '(none)'} is not allowed: this server answers loopback and the names in --allowed-hosts (RERANK_ALLOWED_HOSTS) only`;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !corsOrigins.includes(normalOrigin(origin))) {
    let name = '';
    try {
      name = new URL(origin).hostname.toLowerCase();
    } catch {
      name = '';
    }
    if (!ok(name) && !ok(`[${name}]`)) {
      return `Origin ${origin} is not allowed: this server answers loopback, the names in --allowed-hosts (RERANK_ALLOWED_HOSTS) and the origins in --cors-origins (RERANK_CORS_ORIGINS) only`;
    }
  }
  return undefined;
}

/** Answers a refused request in the shape its route's clients read; returns false to leave it to the default. */
export type Refuse = (req: Request, res: Response, status: number, message: string) => boolean;

export function localOnly(extraHosts: readonly string[] = [], corsOrigins: readonly string[] = [], refuse?: Refuse) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const problem = hostProblem(req, extraHosts, corsOrigins);
    if (problem) {
      if (!refuse?.(req, res, 403, problem)) res.status(403).json({ error: problem });
      return;
    }
    next();
  };
}

/** An Origin as browsers send it: scheme://host[:port], lower case, no trailing slash. */
export const normalOrigin = (origin: string) => origin.trim().toLowerCase().replace(/\/+$/, '');

/**
 * Opt-in CORS for the origins named in --cors-origins: a browser page there may call the REST
 * routes and /mcp with the token. Preflights are answered here, before the token check (a
 * browser never sends credentials with one); the call itself still needs the token. Other
 * origins get no CORS headers, and the Origin guard refuses them.
 */
export function cors(origins: readonly string[]) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.headers.origin;
    if (origins.length === 0 || origin === undefined || !origins.includes(normalOrigin(origin))) return next();
    res.vary('Origin');
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Expose-Headers', 'X-Rerank-Id, Retry-After, WWW-Authenticate, Mcp-Session-Id');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, DELETE');
      // SDKs add their own headers (cohere-ai: X-Fern-*, X-Client-Name); the origin is trusted, so whatever it asks for.
      res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] || 'Authorization, Content-Type');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Shorter tokens can be guessed over a network; whitespace does not survive every client's header handling. */
export const MIN_TOKEN_CHARS = 16;

/** Why a token is too weak for a server others can reach, or undefined when it will do. */
export function tokenProblem(token: string): string | undefined {
  if (/\s/.test(token)) return 'contains whitespace; use letters, digits and punctuation only (e.g. openssl rand -hex 32)';
  if (token.length < MIN_TOKEN_CHARS) return `has ${token.length} characters; use at least ${MIN_TOKEN_CHARS} (e.g. openssl rand -hex 32)`;
  return undefined;
}

export function hasBearerToken(req: Request, token: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  return match !== null && timingSafeEqual(digest(match[1].trim()), digest(token));
}

export function bearerToken(token: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!hasBearerToken(req, token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="rerank-mcp"');
      res.status(401).json({ error: 'missing or wrong bearer token (set Authorization: Bearer <RERANK_MCP_TOKEN>)' });
      return;
    }
    next();
  };
}
