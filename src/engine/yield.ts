import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Runs `work` over `items`, giving the event loop a turn whenever a slice has taken
 * `sliceMs`, so tokenizing a thousand long documents never stalls other requests.
 */
export async function mapInSlices<T, R>(items: readonly T[], work: (item: T, index: number) => R, signal?: AbortSignal, sliceMs = 8): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let sliceStart = performance.now();
  for (let i = 0; i < items.length; i++) {
    out[i] = work(items[i], i);
    if (performance.now() - sliceStart > sliceMs) {
      await nextTurn();
      signal?.throwIfAborted();
      sliceStart = performance.now();
    }
  }
  return out;
}
