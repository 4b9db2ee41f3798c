/**
 * Cutting length-sorted pairs into batches under a token budget: each batch costs
 * (pairs × longest pair) tokens of compute, so sorting keeps padding small and the budget
 * keeps memory bounded whatever the number of documents.
 */
export interface Sized {
  length: number;
}

export function planBatches<T extends Sized>(items: readonly T[], maxBatchTokens: number): T[][] {
  const sorted = [...items].sort((a, b) => a.length - b.length);
  const batches: T[][] = [];
  let current: T[] = [];
  for (const item of sorted) {
    // Sorted ascending, so the newcomer is the batch's longest.
    if (current.length > 0 && (current.length + 1) * item.length > maxBatchTokens) {
      batches.push(current);
      current = [];
    }
    current.push(item);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
