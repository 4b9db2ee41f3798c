import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { guardLines, requestIdOf, type OversizedLine } from '../src/transports/stdin-line-guard.js';

test('requestIdOf finds the id written last (SDK clients) or first (most others)', () => {
  assert.equal(requestIdOf('{"method":"tools/call","params":{"arguments":{"documents":[{"id":"doc-1"', '"}]}},"jsonrpc":"2.0","id":17}'), 17);
  assert.equal(requestIdOf('{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{', 'xxxx"}}}'), 'abc');
  assert.equal(requestIdOf('{"params":{"id":"doc"', 'zzz"}}'), undefined);
  // an id JSON.parse would round is not echoed as a different one
  assert.equal(requestIdOf('{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call"', 'x"}}'), undefined);
});

test('guardLines passes whole lines, drops an oversized one and reports it', async () => {
  const big = `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"x":"${'a'.repeat(5000)}"}}`;
  const chunks = ['{"a":1}\n{"b"', ':2}\n', big.slice(0, 1000), big.slice(1000) + '\n{"c":3}\n', '{"d":4}'].map((c) => Buffer.from(c));
  const oversized: OversizedLine[] = [];
  const out: string[] = [];
  const guarded = guardLines(Readable.from(chunks), 100, (l) => oversized.push(l));
  for await (const line of guarded) out.push(String(line));
  assert.equal(out.join(''), '{"a":1}\n{"b":2}\n{"c":3}\n{"d":4}');
  assert.deepEqual(oversized, [{ bytes: big.length, id: 9, isToolCall: true }]);
});
