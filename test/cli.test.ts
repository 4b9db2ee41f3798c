/** The built `rerank-mcp` binary: score and tokenize on both fixture models, and start-up errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maxAbsDiff, readParity, TINY_CE, unpackedMiniLm, type MiniLmParity, type TinyParity } from './helpers/fixtures.js';
import { jsonLines, runCli } from './helpers/run-cli.js';
import { CAST_TO_FLOAT, writeOnnxGraph } from './helpers/onnx-graph.js';

const tiny = readParity<TinyParity>('tiny-ce.json');
const minilm = readParity<MiniLmParity>('minilm-l6-ternary.json');
const toJsonl = (pairs: [string, string][]) => pairs.map(([query, document]) => JSON.stringify({ query, document })).join('\n') + '\n';
const work = mkdtempSync(join(tmpdir(), 'rerank-cli-'));

test('score on tiny-ce from a file equals CrossEncoder.predict, in input order', async () => {
  const input = join(work, 'tiny.jsonl');
  writeFileSync(input, toJsonl(tiny.pairs));
  const res = await runCli(['score', '--model', TINY_CE, '--input', input]);
  assert.equal(res.code, 0, res.stderr);
  const lines = jsonLines(res.stdout) as { score: number; logit: number; truncated: boolean }[];
  assert.equal(lines.length, 428);
  assert.ok(maxAbsDiff(lines.map((l) => l.score), tiny.st_predict_default) < 1e-4);
  assert.deepEqual(Object.keys(lines[0]).sort(), ['logit', 'score', 'truncated']);
});

test('tokenize on tiny-ce from stdin equals the Python tokenizer', async () => {
  const res = await runCli(['tokenize', '--model', TINY_CE], { stdin: toJsonl(tiny.pairs) });
  assert.equal(res.code, 0, res.stderr);
  const lines = jsonLines(res.stdout) as { input_ids: number[]; token_type_ids: number[] }[];
  assert.equal(lines.length, 428);
  lines.forEach((l, i) => {
    assert.deepEqual(l.input_ids, tiny.tokens[i].input_ids);
    assert.deepEqual(l.token_type_ids, tiny.tokens[i].token_type_ids);
  });
});

test('score on minilm-l6: fp32 within 1e-4 of PyTorch, int8 within 1e-3 of onnxruntime (Python)', async () => {
  const model = unpackedMiniLm();
  const stdin = toJsonl(minilm.pairs);
  const fp32 = await runCli(['score', '--model', model], { stdin });
  assert.equal(fp32.code, 0, fp32.stderr);
  const fp32Logits = (jsonLines(fp32.stdout) as { logit: number }[]).map((l) => l.logit);
  assert.ok(maxAbsDiff(fp32Logits, minilm.torch_logits) < 1e-4);
  const int8 = await runCli(['score', '--model', model, '--variant', 'int8'], { stdin });
  assert.equal(int8.code, 0, int8.stderr);
  const int8Logits = (jsonLines(int8.stdout) as { logit: number }[]).map((l) => l.logit);
  assert.ok(maxAbsDiff(int8Logits, minilm.ort_python_int8_logits) < 1e-3);
});

test('tokenize on minilm-l6 writes one line per input', async () => {
  const res = await runCli(['tokenize', '--model', unpackedMiniLm()], { stdin: toJsonl(minilm.pairs) });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(jsonLines(res.stdout).length, 64);
});

test('a bad input line gets an error line in its place and exit code 1', async () => {
  const stdin = `${JSON.stringify({ query: 'a', document: 'b' })}\nnot json\n${JSON.stringify({ query: 1 })}\n${JSON.stringify({ query: 'c', document: 'd' })}\n`;
  const res = await runCli(['score', '--model', TINY_CE], { stdin });
  assert.equal(res.code, 1);
  const lines = jsonLines(res.stdout) as Record<string, unknown>[];
  assert.equal(lines.length, 4);
  assert.equal(typeof lines[0].score, 'number');
  assert.match(String(lines[1].error), /line 2: not JSON/);
  assert.match(String(lines[2].error), /line 3: expected/);
  assert.equal(typeof lines[3].score, 'number');
});

function modelDirWith(name: string, graph?: Parameters<typeof writeOnnxGraph>[1], skip: string[] = []): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) if (!skip.includes(f)) copyFileSync(join(TINY_CE, f), join(dir, f));
  if (graph) writeOnnxGraph(join(dir, 'onnx', 'model.onnx'), graph);
  else copyFileSync(join(TINY_CE, 'onnx', 'model.onnx'), join(dir, 'onnx', 'model.onnx'));
  return dir;
}

async function assertStartupError(args: string[], pattern: RegExp) {
  for (const command of [['score'], []]) {
    const res = await runCli([...command, ...args], { stdin: '' });
    assert.notEqual(res.code, 0, `exit code of ${[...command, ...args].join(' ')}`);
    // the server may announce its transport before the background model load fails
    const lines = res.stderr.trim().split('\n').filter((l) => /error/i.test(l));
    assert.equal(lines.length, 1, `one error line, got: ${res.stderr}`);
    assert.match(lines[0], pattern);
    assert.equal(res.stdout, '');
  }
}

test('start-up errors: one clear stderr line naming the path, non-zero exit', async () => {
  await assertStartupError(['--model', join(work, 'nope')], /--model .*nope: no such directory, and not a Hugging Face repo id/);
  await assertStartupError(['--model', modelDirWith('no-tokenizer', undefined, ['tokenizer.json'])], /model file missing: .*no-tokenizer\/tokenizer\.json/);
  await assertStartupError(['--model', TINY_CE, '--variant', 'int8'], /ONNX file missing for variant int8: .*model_quantized\.onnx/);
  const badInputs = modelDirWith('bad-inputs', { inputs: ['input_ids', 'pixel_values'], outputs: [{ name: 'logits', elemType: 'float' }], nodes: [{ op: 'Cast', inputs: ['input_ids'], output: 'logits', castTo: CAST_TO_FLOAT }] });
  await assertStartupError(['--model', badInputs], /bad-inputs\/onnx\/model\.onnx: graph inputs are \[input_ids, pixel_values\]; expected input_ids, attention_mask/);
  const badOutput = modelDirWith('bad-output', { inputs: ['input_ids', 'attention_mask'], outputs: [{ name: 'scores', elemType: 'float' }], nodes: [{ op: 'Cast', inputs: ['input_ids'], output: 'scores', castTo: CAST_TO_FLOAT }] });
  await assertStartupError(['--model', badOutput], /bad-output\/onnx\/model\.onnx: graph outputs are \[scores\]; expected logits/);
  const badShape = modelDirWith('bad-shape', { inputs: ['input_ids', 'attention_mask'], outputs: [{ name: 'logits', elemType: 'float' }], nodes: [{ op: 'Cast', inputs: ['input_ids'], output: 'logits', castTo: CAST_TO_FLOAT }] });
  await assertStartupError(['--model', badShape], /bad-shape\/onnx\/model\.onnx: logits have \d+ labels; expected 1/);
  await assertStartupError(['--model', TINY_CE, '--variant', 'fp16'], /--variant: expected one of fp32, int8/);
});

test('--help lists every option of the command', async () => {
  const res = await runCli(['score', '--help']);
  assert.equal(res.code, 0);
  for (const flag of ['--model', '--variant', '--max-length', '--input', '--batch-size', 'RERANK_MODEL']) assert.ok(res.stdout.includes(flag), flag);
  const serve = await runCli(['--help']);
  for (const flag of ['--http', '--port', '--host', 'RERANK_MCP_TOKEN', 'tokenize']) assert.ok(serve.stdout.includes(flag), flag);
});

test('serve: values that would leave the server unusable are refused at start, in one line', async () => {
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--session-idle-seconds', '0'], {}, /--session-idle-seconds must be at least 1/],
    [['--max-body-mb', '0'], {}, /--max-body-mb must be at least 1/],
    [['--http', '--port', '99999'], {}, /--port must be from 0 to 65535/],
    [['--max-sessions', '0'], {}, /--max-sessions must be at least 1/],
    [[], { RERANK_MAX_SESSIONS: '0' }, /--max-sessions must be at least 1/],
    [['--max-sessions=-3'], {}, /--max-sessions: expected a whole number, got "-3"/],
    [['--max-sessions', '-3'], {}, /--max-sessions' argument is ambiguous/],
    [['--allowed-hosts', 'good.test,bad host'], {}, /--allowed-hosts: "bad host" is not a host name/],
    [[], { RERANK_CORS_ORIGINS: 'https://app.test,*' }, /--cors-origins: "\*" is not an origin/],
    [['--rerank-log-max-mb', 'lots'], {}, /--rerank-log-max-mb: expected a whole number/],
  ];
  for (const [args, env, pattern] of cases) {
    const res = await runCli(['serve', '--model', TINY_CE, ...args], { env, timeoutMs: 20_000 });
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
    const lines = res.stderr.trim().split('\n');
    assert.equal(lines.length, 1, res.stderr);
    assert.match(lines[0], pattern);
  }
});
