/** Assertions shared by the stdio and HTTP suites: the same server must answer both alike. */
import assert from 'node:assert/strict';
import { z } from 'zod';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { modelInfoOutput, rerankOutput, scorePairOutput } from '../../src/mcp/schemas.js';
import { maxAbsDiff, readParity, type TinyParity } from './fixtures.js';

const tiny = readParity<TinyParity>('tiny-ce.json');

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown>; content: { type: string; text?: string }[] };

export async function call(client: Client, name: string, args: Record<string, unknown>): Promise<ToolResult> {
  return (await client.callTool({ name, arguments: args })) as ToolResult;
}

export function errorText(result: ToolResult): string {
  assert.equal(result.isError, true, `expected isError, got ${JSON.stringify(result).slice(0, 300)}`);
  return result.content.map((c) => c.text ?? '').join('\n');
}

/** structuredContent valid against the output schema, and mirrored as JSON text. */
function checked<T extends z.ZodRawShape>(result: ToolResult, shape: T): z.infer<z.ZodObject<T>> {
  assert.notEqual(result.isError, true, JSON.stringify(result.content));
  const data = z.object(shape).strict().parse(result.structuredContent);
  assert.deepEqual(JSON.parse(result.content[0].text!), result.structuredContent);
  return data;
}

export async function checkToolList(client: Client): Promise<void> {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['feedback', 'model_info', 'rerank', 'score_pair']);
  for (const tool of tools) {
    assert.ok(tool.title, `${tool.name} has a title`);
    assert.ok((tool.description ?? '').length > 80, `${tool.name} says when to use it`);
    assert.ok(tool.outputSchema, `${tool.name} has an output schema`);
    const a = tool.annotations ?? {};
    for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) assert.equal(typeof a[hint], 'boolean', `${tool.name}.${hint}`);
  }
}

export async function checkRerank(client: Client): Promise<void> {
  const { query, documents, result } = tiny.st_rank;
  const res = checked(await call(client, 'rerank', { query, documents }), rerankOutput);
  assert.deepEqual(res.results.map((r) => r.index), result.map((r) => r.corpus_id));
  assert.ok(maxAbsDiff(res.results.map((r) => r.score), result.map((r) => r.score)) < 1e-4);
  res.results.forEach((r) => assert.equal(r.document, documents[r.index]));

  const objects = documents.map((text, i) => ({ id: `doc-${i}`, text, metadata: { path: `f${i}.py` } }));
  const top = checked(await call(client, 'rerank', { query, documents: objects, top_k: 3, return_documents: false }), rerankOutput);
  assert.equal(top.results.length, 3);
  assert.deepEqual(top.results.map((r) => r.id), result.slice(0, 3).map((r) => `doc-${r.corpus_id}`));
  top.results.forEach((r) => assert.equal(r.document, undefined));

  const threshold = result[3].score - 1e-3;
  const above = checked(await call(client, 'rerank', { query, documents, min_score: threshold }), rerankOutput);
  assert.deepEqual(above.results.map((r) => r.index), result.slice(0, 4).map((r) => r.corpus_id));
}

export async function checkScorePair(client: Client): Promise<void> {
  const single = checked(await call(client, 'score_pair', { query: tiny.pairs[0][0], document: tiny.pairs[0][1] }), scorePairOutput);
  assert.equal(single.results.length, 1);
  assert.ok(Math.abs(single.results[0].score - tiny.st_predict_default[0]) < 1e-4);
  const pairs = tiny.pairs.slice(0, 40).map(([q, d]) => ({ query: q, document: d }));
  const many = checked(await call(client, 'score_pair', { pairs }), scorePairOutput);
  assert.ok(maxAbsDiff(many.results.map((r) => r.score), tiny.st_predict_default.slice(0, 40)) < 1e-4);
  assert.match(errorText(await call(client, 'score_pair', { query: 'q', document: 'd', pairs })), /either \{query, document\} or \{pairs/);
  assert.match(errorText(await call(client, 'score_pair', {})), /either/);
  assert.match(errorText(await call(client, 'score_pair', { query: 'q' })), /needs both query and document/);
}

export async function checkModelInfo(client: Client): Promise<void> {
  const info = checked(await call(client, 'model_info', {}), modelInfoOutput);
  assert.equal(info.state, 'ready');
  assert.deepEqual(info.input_names!.sort(), ['attention_mask', 'input_ids', 'token_type_ids']);
  assert.equal(info.max_length, 512);
  assert.equal(info.activation, 'identity');
  assert.equal(info.num_labels, 1);
  assert.equal(info.tokenizer_family, 'bert-wordpiece');
  assert.equal(info.tokenizer_verified, true);
  assert.equal(info.variant, 'fp32');
  assert.match(info.onnxruntime_version!, /^1\.30/);
  assert.equal(info.max_call_tokens, 512_000);
}

export async function checkBadInputs(client: Client): Promise<void> {
  assert.match(errorText(await call(client, 'rerank', { query: 'q', documents: [] })), /at least 1 document/);
  const many = Array.from({ length: 1001 }, (_, i) => `doc ${i}`);
  assert.match(errorText(await call(client, 'rerank', { query: 'q', documents: many })), /limited to 1000 per call/);
  assert.match(errorText(await call(client, 'rerank', { query: 5, documents: ['a'] })), /query must be a string/);
  assert.match(errorText(await call(client, 'rerank', { query: 'q', documents: 'abc' })), /documents must be an array/);
  assert.match(errorText(await call(client, 'rerank', { query: 'q', documents: [{ id: 'x' }] })), /text/);
  const huge = 'x'.repeat(200_000);
  assert.match(errorText(await call(client, 'rerank', { query: huge, documents: ['a'] })), /limited to 100000 characters/);
  assert.match(errorText(await call(client, 'rerank', { query: 'q', documents: ['a', huge] })), /limited to 100000 characters/);
  assert.match(errorText(await call(client, 'rerank', { query: 'q', documents: ['a'], top_k: 0 })), /top_k must be at least 1/);
  assert.match(errorText(await call(client, 'score_pair', { pairs: Array.from({ length: 1001 }, () => ({ query: 'q', document: 'd' })) })), /limited to 1000 per call/);
  // An unknown tool is a protocol error (-32602), not a result (MCP spec, server/tools, Error Handling).
  await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), (err: Error & { code?: number }) => err.code === -32602 && /Unknown tool: no_such_tool/.test(err.message));
}
