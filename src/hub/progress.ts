/**
 * Download progress on stderr (stdout is the MCP channel): a redrawn bar on a terminal, and
 * plain lines every 10% or 2 s otherwise, so a log file gets a few lines, not thousands.
 */
import type { ProgressEvent } from './download-blob.js';
import { log, logFormat } from '../log.js';

export type { ProgressEvent } from './download-blob.js';

export interface ProgressSink {
  isTTY?: boolean;
  write(text: string): unknown;
}

const PREFIX = '[rerank-mcp] ';
const BAR_WIDTH = 24;
const REDRAW_MS = 100;
const LINE_EVERY_MS = 2000;
const LINE_EVERY_PERCENT = 10;

export function formatBytes(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/** An onProgress for resolveModel that prints to `sink` (stderr by default). */
export function progressPrinter(sink: ProgressSink = process.stderr, now: () => number = Date.now): (p: ProgressEvent) => void {
  // With --log-format json every stderr line is a JSON object: plain progress lines, through the log.
  if (sink === process.stderr && logFormat() === 'json') sink = { write: (text: string) => log(text.replace(/^\[rerank-mcp\] |\n$/g, '')) };
  let file = '';
  let lastAt = 0;
  let lastStep = -1;
  return (p) => {
    if (p.file !== file) {
      file = p.file;
      lastAt = now();
      lastStep = -1;
    }
    const done = p.loaded >= p.total;
    const fraction = p.total > 0 ? Math.min(1, p.loaded / p.total) : 1;
    const percent = Math.floor(fraction * 100);
    const amount = `${formatBytes(p.loaded)} / ${formatBytes(p.total)}`;
    if (sink.isTTY) {
      if (!done && now() - lastAt < REDRAW_MS && p.loaded > 0) return;
      lastAt = now();
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = '#'.repeat(filled) + '-'.repeat(BAR_WIDTH - filled);
      // \x1b[K clears what a longer previous line left behind.
      sink.write(`\r${PREFIX}${p.file} [${bar}] ${String(percent).padStart(3)}% ${amount}\x1b[K${done ? '\n' : ''}`);
      return;
    }
    const step = Math.floor(percent / LINE_EVERY_PERCENT);
    if (p.loaded === 0 || (!done && step === lastStep && now() - lastAt < LINE_EVERY_MS)) return;
    if (done && lastStep === Infinity) return;
    lastStep = done ? Infinity : step;
    lastAt = now();
    sink.write(`${PREFIX}downloading ${p.file}: ${percent}% (${amount})\n`);
  };
}
