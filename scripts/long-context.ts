/**
 * Time and peak memory of one long pair through the ONNX session, per pair length, each length
 * in a fresh process (peak RSS only grows). Ratios are against the shortest length of the same run.
 *
 *   .venv-finetune/bin/python scripts/make_long_context_model.py /tmp/qwen3-0.6b-2layers
 *   node --import tsx scripts/long-context.ts /tmp/qwen3-0.6b-2layers 1024 2048 4096 8192
 *
 * The model has Qwen3-Reranker-0.6B's layer shape with 2 of its 28 layers: docs/long-context.md
 * extrapolates to the full model.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CrossEncoderSession } from '../src/model/onnx-session.js';

async function child(dir: string, tokens: number): Promise<void> {
  const session = await CrossEncoderSession.open(join(dir, 'onnx', 'model.onnx'), undefined, 999);
  const loadedRss = process.memoryUsage().rss;
  const ids = Array.from({ length: tokens }, (_, i) => (i * 7919) % 998);
  const start = performance.now();
  await session.run([{ inputIds: ids, typeIds: ids.map(() => 0) }]);
  const seconds = (performance.now() - start) / 1000;
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ tokens, seconds, loaded_rss_mb: loadedRss / 2 ** 20, peak_rss_mb: peak / 2 ** 20 }) + '\n');
  await session.release();
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === '--child') {
  await child(rest[0], Number(rest[1]));
} else {
  const dir = mode;
  const lengths = rest.map(Number);
  const rows: { tokens: number; seconds: number; loaded_rss_mb: number; peak_rss_mb: number }[] = [];
  for (const n of lengths) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', dir, String(n)], { encoding: 'utf8' });
    if (r.status !== 0) {
      process.stdout.write(`${n} tokens: failed (${r.stderr.trim().split('\n').at(-1)})\n`);
      continue;
    }
    rows.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
  }
  const base = rows[0];
  for (const row of rows) {
    process.stdout.write(
      `${row.tokens} tokens: ${row.seconds.toFixed(2)} s (x${(row.seconds / base.seconds).toFixed(1)}), ` +
        `peak RSS ${row.peak_rss_mb.toFixed(0)} MB, over the loaded session ${(row.peak_rss_mb - row.loaded_rss_mb).toFixed(0)} MB ` +
        `(x${((row.peak_rss_mb - row.loaded_rss_mb) / (base.peak_rss_mb - base.loaded_rss_mb)).toFixed(1)})\n`,
    );
  }
}
