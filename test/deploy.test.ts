/**
 * What of deploy/ can run here (no Docker, no cluster): every manifest parses, the pieces
 * agree with each other (ports, probes, secret keys), and every container command is an
 * invocation the built CLI accepts (--print-config) and that means a stateless HTTP replica.
 * haproxy.cfg is run for real by test/replicas.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { CLI, REPO_ROOT } from './helpers/fixtures.js';

const DEPLOY = join(REPO_ROOT, 'deploy');

type Env = { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } };

function manifests(): Record<string, any>[] {
  const docs: Record<string, any>[] = [];
  for (const file of readdirSync(join(DEPLOY, 'k8s')).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY, 'k8s', file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file}: ${doc.errors.join('; ')}`);
      docs.push(doc.toJS());
    }
  }
  return docs;
}

/** The settings the CLI would run with, given a container's args and environment. */
function printConfig(args: string[], env: Record<string, string>): Record<string, unknown> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RERANK_'))) as Record<string, string>;
  const out = execFileSync(process.execPath, [CLI, ...args, '--print-config'], { env: { ...clean, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out) as Record<string, unknown>;
}

/** Compose's ${VAR:-default} gives the default; ${VAR:?message} (required) a stand-in value. */
const interpolate = (value: string) => value.replace(/\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}/g, (_m, name: string, fallback?: string) => fallback ?? `${name.toLowerCase()}-0123456789abcdef`);

function assertStatelessReplica(config: Record<string, unknown>, where: string): void {
  assert.equal(config.command, 'serve', where);
  assert.equal(config.http, true, where);
  assert.equal(config.stateless, true, where);
  assert.equal(config.host, '0.0.0.0', where);
  assert.equal(config.port, 8765, where);
  assert.equal(config.token, '***', `${where}: the token comes from the secret`);
  assert.equal(config.model, '/models/reranker', where);
}

test('deploy/k8s: manifests parse; Deployment, Service, HPA and Secret agree', () => {
  const docs = manifests();
  const byKind = (kind: string) => {
    const found = docs.filter((d) => d.kind === kind);
    assert.equal(found.length, 1, `one ${kind}`);
    return found[0];
  };
  const deployment = byKind('Deployment');
  const service = byKind('Service');
  const hpa = byKind('HorizontalPodAutoscaler');
  const secret = byKind('Secret');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
  assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);
  assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
  assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
  assert.ok(hpa.spec.minReplicas >= 2);
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  const port = container.ports.find((p: { name: string }) => p.name === container.readinessProbe.httpGet.port);
  assert.equal(port.containerPort, 8765);
  assert.equal(service.spec.ports[0].targetPort, port.name);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  // Every secret the pod reads exists in the Secret.
  const env = container.env as Env[];
  for (const e of env.filter((e) => e.valueFrom)) {
    assert.equal(e.valueFrom!.secretKeyRef.name, secret.metadata.name);
    assert.ok(e.valueFrom!.secretKeyRef.key in secret.stringData, `secret key ${e.valueFrom!.secretKeyRef.key}`);
  }
  const values = Object.fromEntries(env.map((e) => [e.name, e.value ?? secret.stringData[e.valueFrom!.secretKeyRef.key]]));
  assert.ok(values.RERANK_MCP_TOKEN && values.RERANK_FEEDBACK_DB);
  const config = printConfig(container.args, values);
  assertStatelessReplica(config, 'Deployment');
  assert.equal(config.threads, Number(container.resources.limits.cpu), 'ONNX threads match the CPU limit');
});

test('deploy/docker-compose.yml: PostgreSQL + 2 replicas + haproxy; the replicas run a valid stateless command', () => {
  const compose = parse(readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true });
  const services = compose.services as Record<string, any>;
  assert.match(services.postgres.image, /^postgres:/);
  assert.ok(services.haproxy.volumes.some((v: string) => v.startsWith('./haproxy.cfg:')));
  const replicas = Object.keys(services).filter((name) => name.startsWith('rerank-'));
  assert.equal(replicas.length, 2);
  const haproxyServers = [...readFileSync(join(DEPLOY, 'haproxy.cfg'), 'utf8').matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)];
  assert.deepEqual(haproxyServers.map((m) => m[2]).sort(), replicas.sort(), 'haproxy.cfg names the compose replicas');
  for (const name of replicas) {
    const service = services[name];
    assert.equal(service.build.dockerfile, 'deploy/Dockerfile');
    const env = Object.fromEntries(Object.entries(service.environment as Record<string, string>).map(([k, v]) => [k, interpolate(v)]));
    assert.match(env.RERANK_FEEDBACK_DB, /^postgres:\/\/.*@postgres:5432\//);
    assertStatelessReplica(printConfig(service.command, env), name);
  }
});

test('deploy/Dockerfile: multi-stage, non-root, no CUDA download; its ENTRYPOINT + CMD is a valid stateless command', () => {
  const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
  assert.match(dockerfile, /ONNXRUNTIME_NODE_INSTALL=skip/);
  const user = [...dockerfile.matchAll(/^USER (\S+)/gm)].at(-1)?.[1];
  assert.ok(user && user !== 'root' && user !== '0', `runs as ${user}`);
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
  assert.deepEqual(JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]), ['rerank-mcp']);
  // The image's ENV lines, as the container would see them.
  const envBlock = /^ENV ([\s\S]*?)^(?!\s)/m.exec(dockerfile.split(/^FROM /m).at(-1)!.replace(/^.*\n/, ''))?.[1] ?? '';
  const env = Object.fromEntries([...envBlock.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
  assert.equal(env.RERANK_MODEL, '/models/reranker');
  assertStatelessReplica(printConfig(cmd, { ...env, RERANK_MCP_TOKEN: 'token-from-the-secret-0123456789' }), 'Dockerfile');
});
