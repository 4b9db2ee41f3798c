#!/usr/bin/env node
// Builds rerank-mcp.mcpb, an MCP Bundle (manifest 0.3, server.type node) for one-click install in
// Claude Desktop: dist/, package.json and the production dependencies as this checkout installed
// them (npm ci), so the bundle holds the locked, tested versions and the native modules built for
// this platform (the manifest's compatibility says which). Validated and packed by the official
// @anthropic-ai/mcpb CLI. Run through `npm run bundle`, which builds dist/ first.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STAGE = join(ROOT, '.cache', 'mcpb', 'rerank-mcp');
const OUT = resolve(process.argv[2] ?? join(ROOT, 'rerank-mcp.mcpb'));
const MCPB = join(ROOT, 'node_modules', '@anthropic-ai', 'mcpb', 'dist', 'cli', 'cli.js');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

rmSync(STAGE, { recursive: true, force: true });
mkdirSync(STAGE, { recursive: true });
for (const f of ['dist', 'package.json', 'README.md']) cpSync(join(ROOT, f), join(STAGE, f), { recursive: true });
const manifest = JSON.parse(readFileSync(join(ROOT, 'mcpb', 'manifest.json'), 'utf8'));
manifest.version = pkg.version;
manifest.compatibility.platforms = [process.platform];
writeFileSync(join(STAGE, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

// The production dependency tree as installed here (top-level folders; nested ones come with them).
const paths = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n')
  .map((p) => relative(ROOT, p))
  .filter((p) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(p));
for (const p of new Set(paths)) cpSync(join(ROOT, p), join(STAGE, p), { recursive: true, verbatimSymlinks: true });
// onnxruntime-node ships binaries for every platform; the bundle is for this one.
const ortBin = join(STAGE, 'node_modules', 'onnxruntime-node', 'bin');
for (const napi of readdirSync(ortBin)) {
  for (const os of readdirSync(join(ortBin, napi))) {
    if (os !== process.platform) rmSync(join(ortBin, napi, os), { recursive: true, force: true });
    else for (const arch of readdirSync(join(ortBin, napi, os))) if (arch !== process.arch) rmSync(join(ortBin, napi, os, arch), { recursive: true, force: true });
  }
}

execFileSync(process.execPath, [MCPB, 'validate', join(STAGE, 'manifest.json')], { stdio: 'inherit' });
execFileSync(process.execPath, [MCPB, 'pack', STAGE, OUT], { stdio: 'inherit' });
console.error(`wrote ${relative(process.cwd(), OUT) || OUT} (${paths.length} dependency folders, ${process.platform}-${process.arch})`);
