/**
 * The WordPiece model as the Rust crate runs it: greedy longest-match-first over the word,
 * pieces after the first looked up with the continuing-subword prefix, the whole word one
 * unknown token as soon as a position has no piece, or when it is longer than
 * `max_input_chars_per_word` characters (code points, as Rust counts `chars()`).
 *
 * Rust tries every end from the longest down and looks each substring up; done that way in
 * JavaScript a 100-letter word that ends in an out-of-vocabulary character costs ~3 ms (a
 * substring built per end, per start). The vocabulary is held as a trie of UTF-16 code units
 * instead, so the longest piece at a position is found in one walk as long as that piece:
 * the same pieces, in time linear in the word.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** Thrown when the WordPiece configuration cannot be used; pipeline.ts turns it into UnsupportedTokenizer. */
export class WordPieceConfigError extends Error {}

const NO_ID = -1;
// Child of node n by code unit u is edges.get(n * UNITS + u): one Map for the whole trie
// instead of one per node keeps a 30k vocabulary at a few MB.
const UNITS = 0x10000;

class VocabTrie {
  private readonly edges = new Map<number, number>();
  private readonly ids: number[] = [NO_ID];

  insert(piece: string, id: number): void {
    let node = 0;
    for (let i = 0; i < piece.length; i++) {
      const key = node * UNITS + piece.charCodeAt(i);
      let child = this.edges.get(key);
      if (child === undefined) {
        child = this.ids.length;
        this.ids.push(NO_ID);
        this.edges.set(key, child);
      }
      node = child;
    }
    this.ids[node] = id;
  }

  /** The node reached from `node` by the code units of `text`, or NO_ID. */
  walk(node: number, text: string): number {
    for (let i = 0; i < text.length && node !== NO_ID; i++) node = this.edges.get(node * UNITS + text.charCodeAt(i)) ?? NO_ID;
    return node;
  }

  /**
   * The longest vocabulary piece read from `node` along `word` starting at `start` that ends
   * on a code point boundary: [end, id], or null.
   */
  longest(node: number, word: string, start: number): [number, number] | null {
    let best: [number, number] | null = null;
    for (let j = start; j < word.length; j++) {
      const next = this.edges.get(node * UNITS + word.charCodeAt(j));
      if (next === undefined) break;
      node = next;
      const id = this.ids[node];
      if (id !== NO_ID && !splitsSurrogatePair(word, j + 1)) best = [j + 1, id];
    }
    return best;
  }
}

function splitsSurrogatePair(text: string, at: number): boolean {
  if (at <= 0 || at >= text.length) return false;
  const before = text.charCodeAt(at - 1);
  const after = text.charCodeAt(at);
  return before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff;
}

/** More than `max` code points in `word`, counted only as far as needed. */
function longerThan(word: string, max: number): boolean {
  if (word.length <= max) return false;
  let count = 0;
  for (let i = 0; i < word.length; i++) {
    const unit = word.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < word.length) {
      const low = word.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) i++;
    }
    if (++count > max) return true;
  }
  return false;
}

export function wordPieceModel(config: Json): (word: string) => number[] {
  const vocab = config.vocab as Record<string, number>;
  const trie = new VocabTrie();
  for (const [piece, id] of Object.entries(vocab)) trie.insert(piece, id);
  const unk: number | undefined = Object.hasOwn(vocab, config.unk_token) ? vocab[config.unk_token] : undefined;
  if (unk === undefined) throw new WordPieceConfigError(`WordPiece unk_token ${config.unk_token} not in the vocabulary`);
  const prefix: string = config.continuing_subword_prefix ?? '##';
  const maxChars: number = config.max_input_chars_per_word ?? 100;
  const continuing = trie.walk(0, prefix);
  return (word) => {
    if (longerThan(word, maxChars)) return [unk];
    const ids: number[] = [];
    for (let start = 0; start < word.length; ) {
      const root = start > 0 ? continuing : 0;
      const found = root === NO_ID ? null : trie.longest(root, word, start);
      if (found === null) return [unk];
      ids.push(found[1]);
      start = found[0];
    }
    return ids;
  };
}
