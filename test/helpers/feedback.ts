/** What the feedback-store suites share: temp folders removed after the file's tests, and a clock moved by hand. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A maker of fresh temp directories named `prefix…`, all removed once the calling test file is done. */
export function tempDirs(prefix: string): () => string {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

/** A clock the test moves by hand. */
export function clock(start = '2025-03-01T12:00:00.000Z') {
  let now = new Date(start).getTime();
  return { now: () => new Date(now), advanceDays: (days: number) => (now += days * 86_400_000) };
}
