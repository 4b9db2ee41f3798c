/**
 * server.json, the MCP registry's entry for this package, against the registry's published schema
 * (test/schemas/server.schema.json, a copy of
 * https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json, from
 * github.com/modelcontextprotocol/registry docs/reference/server-json/server.schema.json), with ajv.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { REPO_ROOT } from './helpers/fixtures.js';

const read = (...p: string[]) => JSON.parse(readFileSync(join(REPO_ROOT, ...p), 'utf8'));
const schema = read('test', 'schemas', 'server.schema.json');
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
// strict: false because the schema carries OpenAPI keywords (example, discriminator) that draft-07 does not define.
const validate = addFormats(new Ajv({ strict: false, allErrors: true })).compile(schema);

test('server.json is valid against the registry schema and names this package', () => {
  const server = read('server.json');
  const pkg = read('package.json');
  assert.ok(validate(server), JSON.stringify(validate.errors));
  assert.equal(server.$schema, schema.$id);
  assert.equal(server.name, pkg.mcpName, 'the registry checks mcpName in the published package.json');
  assert.equal(server.version, pkg.version);
  const npm = server.packages.find((p: { registryType: string }) => p.registryType === 'npm');
  assert.equal(npm.identifier, pkg.name);
  assert.equal(npm.version, pkg.version);
  assert.deepEqual(npm.transport, { type: 'stdio' });
  assert.ok(pkg.files.includes('server.json'));
});

test('the validator refuses what the registry refuses', () => {
  const server = read('server.json');
  assert.equal(validate({ ...server, description: 'x'.repeat(101) }), false, 'a description over 100 characters');
  assert.equal(validate({ ...server, name: 'no-slash' }), false, 'a name without a namespace');
  assert.equal(validate({ ...server, packages: [{ ...server.packages[0], version: 'latest' }] }), false, 'version "latest"');
});
