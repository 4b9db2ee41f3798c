/**
 * Pair truncation with the `longest_first` strategy, as the Rust `tokenizers` crate does it
 * (truncate_encodings in utils/truncation.rs): lengths are decided once, not token by token,
 * so ties and odd budgets land where Python's fast tokenizer puts them.
 *
 * `budget` is the room left for both sequences once the template's special tokens are counted.
 * Returns the lengths each side is cut to (right truncation, stride 0).
 */
export function longestFirstLengths(lenA: number, lenB: number, budget: number): [number, number] {
  if (lenA + lenB <= budget) return [lenA, lenB];
  const swap = lenA > lenB;
  let short = swap ? lenB : lenA;
  let long: number;
  if (short > budget) {
    long = short;
  } else {
    long = Math.max(short, budget - short);
  }
  if (short + long > budget) {
    short = Math.floor(budget / 2);
    long = short + (budget % 2);
  }
  const [a, b] = swap ? [long, short] : [short, long];
  return [Math.min(a, lenA), Math.min(b, lenB)];
}
