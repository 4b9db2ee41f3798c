/**
 * What a user gets from the registry: `npm pack` makes a tarball that installs globally
 * and runs. Dependencies come from the npm cache or registry, as for a real user.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, TINY_CE } from './helpers/fixtures.js';

test('npm pack → npm install -g → rerank-mcp --help and score work', { timeout: 15 * 60_000 }, (t) => {
  const work = mkdtempSync(join(tmpdir(), 'rerank-pack-'));
  // onnxruntime-node's install step fetches CUDA files from outside the npm registry; the CPU build ships in the package
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  execFileSync('npm', ['pack', '--pack-destination', work], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
  const listing = execFileSync('tar', ['-tzf', join(work, tarball)], { encoding: 'utf8' });
  assert.match(listing, /package\/dist\/cli\.js/);
  assert.match(listing, /package\/mcp\.json/);
  assert.doesNotMatch(listing, /package\/test\//);
  assert.doesNotMatch(listing, /package\/src\//);

  const prefix = join(work, 'global');
  const install = spawnSync('npm', ['install', '-g', '--prefer-offline', '--prefix', prefix, join(work, tarball)], { env, encoding: 'utf8' });
  assert.equal(install.status, 0, install.stderr);
  const bin = join(prefix, 'bin', 'rerank-mcp');
  const help = spawnSync(bin, ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /Usage: rerank-mcp/);
  const score = spawnSync(bin, ['score', '--model', TINY_CE], { input: '{"query":"q","document":"d"}\n', encoding: 'utf8', env: { ...process.env, RERANK_FEEDBACK_DB: join(work, 'f.db') } });
  assert.equal(score.status, 0, score.stderr);
  assert.equal(typeof JSON.parse(score.stdout).score, 'number');
  t.diagnostic(`installed ${tarball} into ${prefix}`);
});
