/**
 * GET /healthz (liveness) and GET /readyz (readiness) for load balancers and Kubernetes. Probes
 * come with any Host (a pod IP, the balancer's own name) or none at all (HTTP/1.0), so these
 * routes sit in front of the Host/Origin and token guards; in exchange they tell anonymous
 * callers nothing but up/ready. Details go to holders of the token, or, with no token set, to
 * requests that pass the Host/Origin check (a local user, never a DNS-rebinding page).
 */
import type { Express, Request, Response } from 'express';
import { hasBearerToken, hostProblem } from './http-guards.js';

export interface HealthOptions {
  token?: string;
  allowedHosts: readonly string[];
  /** Counts for /healthz, shown only to trusted callers. */
  details: () => Record<string, unknown>;
  /** Why the server cannot serve calls yet (model, store), one entry each; empty when ready. */
  notReady: () => Promise<Record<string, string>>;
}

export function mountHealth(app: Express, options: HealthOptions): void {
  const trusted = (req: Request) => (options.token ? hasBearerToken(req, options.token) : hostProblem(req, options.allowedHosts) === undefined);
  const noStore = (res: Response) => res.setHeader('Cache-Control', 'no-store');

  app.get('/healthz', (req, res) => {
    noStore(res);
    res.json(trusted(req) ? { status: 'ok', ...options.details() } : { status: 'ok' });
  });

  app.get('/readyz', async (req, res) => {
    noStore(res);
    const problems = await options.notReady();
    const ready = Object.keys(problems).length === 0;
    res.status(ready ? 200 : 503).json(trusted(req) && !ready ? { status: 'not ready', ...problems } : { status: ready ? 'ready' : 'not ready' });
  });
}
