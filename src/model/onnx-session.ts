/**
 * The ONNX Runtime session of a cross-encoder: which inputs the graph takes, and one
 * padded batch in, one row of logits per pair out.
 */
import { availableParallelism } from 'node:os';
import '../telemetry-off.js';
import * as ort from 'onnxruntime-node';
import { ModelLoadError } from './model-dir.js';

export interface EncodedPair {
  inputIds: number[];
  typeIds: number[];
  /**
   * How many leading ids this pair shares with every other pair of its call (set by the engine
   * when the model has a prefix graph): a batch runs those once and only the rest per pair.
   */
  prefixLength?: number;
}

/** Fewer shared tokens than this are not worth a run of their own. */
const MIN_PREFIX = 8;
/** Prefixes whose keys and values are kept: a call's batches, and calls repeating a query, reuse them. */
const PREFIXES_KEPT = 4;

/**
 * A decoder reranker's second graph (python/decoder_past.py, onnx/model_past.onnx, or for int8
 * onnx/model_past_quantized.onnx): it continues
 * from cached keys and values, so the tokens every pair of a call starts with (system prompt,
 * instruction, query) are run once and each pair's own tokens attend to them. The shared part
 * is the longest common prefix of the pairs' ids as the tokenizer gave them for the whole
 * sequence, so it is exactly what each pair's sequence starts with, whatever BPE merged across
 * the template's boundaries; and with causal attention its keys and values are the same alone
 * as in front of any suffix. Suffixes are padded on the right, position ids go on from the prefix.
 */
export class PrefixGraph {
  private readonly pastNames: string[];
  private readonly presentNames: string[];
  private kept: { key: string; feeds: Record<string, ort.Tensor> }[] = [];
  /** Prefix runs and batches scored through this graph, for model_info (and the tests that prove the path is taken). */
  readonly counters = { prefixRuns: 0, batches: 0 };

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly path: string,
    private readonly kvHeads: number,
    private readonly headDim: number,
    private readonly padTokenId: number,
  ) {
    const layers = session.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
    this.pastNames = Array.from({ length: layers }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat();
    this.presentNames = Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
  }

  static async open(path: string, threads: number, shape: { kvHeads: number; headDim: number }, padTokenId: number): Promise<PrefixGraph> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', enableMemPattern: false });
    } catch (err) {
      throw new ModelLoadError(`cannot load ONNX model ${path}: ${(err as Error).message}`);
    }
    const graph = new PrefixGraph(session, path, shape.kvHeads, shape.headDim, padTokenId);
    const expected = ['input_ids', 'attention_mask', 'position_ids', ...graph.pastNames];
    if (graph.pastNames.length === 0 || expected.some((n) => !session.inputNames.includes(n)) || graph.presentNames.some((n) => !session.outputNames.includes(n)) || !session.outputNames.includes('logits')) {
      await session.release();
      throw new ModelLoadError(`${path}: graph inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}] are not those of python/decoder_past.py (input_ids, attention_mask, position_ids, past_key_values.<i>.key/value; logits, present.<i>.key/value); export it again or delete it`);
    }
    return graph;
  }

  /** Leading ids every pair of `batch` shares and may run as a prefix (0: run the batch whole). */
  static sharedPrefix(batch: readonly EncodedPair[]): number {
    let p = Math.min(...batch.map((pair) => Math.min(pair.prefixLength ?? 0, pair.inputIds.length - 1)));
    const first = batch[0].inputIds;
    for (const pair of batch) for (let i = 0; i < p; i++) if (pair.inputIds[i] !== first[i]) p = i;
    return p >= MIN_PREFIX ? p : 0;
  }

  async run(batch: readonly EncodedPair[], p: number): Promise<{ logits: Float32Array; labels: number }> {
    const past = await this.prefix(batch[0].inputIds.slice(0, p));
    const width = batch.reduce((m, pair) => Math.max(m, pair.inputIds.length - p), 0);
    const ids = new BigInt64Array(batch.length * width).fill(BigInt(this.padTokenId));
    const mask = new BigInt64Array(batch.length * (p + width));
    const positions = new BigInt64Array(batch.length * width);
    batch.forEach((pair, row) => {
      mask.fill(1n, row * (p + width), row * (p + width) + pair.inputIds.length);
      for (let i = p; i < pair.inputIds.length; i++) ids[row * width + i - p] = BigInt(pair.inputIds[i]);
      for (let i = 0; i < width; i++) positions[row * width + i] = BigInt(p + i);
    });
    const out = await this.session.run(
      {
        input_ids: new ort.Tensor('int64', ids, [batch.length, width]),
        attention_mask: new ort.Tensor('int64', mask, [batch.length, p + width]),
        position_ids: new ort.Tensor('int64', positions, [batch.length, width]),
        ...past,
      },
      ['logits'],
    );
    this.counters.batches++;
    const logits = out.logits;
    return { logits: logits.data as Float32Array, labels: Number(logits.dims[1]) };
  }

  /** The keys and values of `ids` as past_key_values feeds: kept ones, or one run of the graph over them. */
  private async prefix(ids: number[]): Promise<Record<string, ort.Tensor>> {
    const key = ids.join(',');
    const found = this.kept.find((k) => k.key === key);
    if (found) return found.feeds;
    const out = await this.fromStart(ids, this.presentNames);
    this.counters.prefixRuns++;
    const feeds = Object.fromEntries(this.pastNames.map((n, i) => [n, out[this.presentNames[i]]]));
    this.kept = [{ key, feeds }, ...this.kept.slice(0, PREFIXES_KEPT - 1)];
    return feeds;
  }

  /** The logits of `ids` run as a prefix is (no past, one row): the same tensors the plain graph computes, for the load-time check. */
  async logitsAlone(ids: number[]): Promise<Float32Array> {
    return (await this.fromStart(ids, ['logits'])).logits.data as Float32Array;
  }

  private fromStart(ids: number[], outputs: string[]): Promise<ort.InferenceSession.ReturnType> {
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, this.kvHeads, 0, this.headDim]);
    return this.session.run(
      {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(i)), [1, ids.length]),
        ...Object.fromEntries(this.pastNames.map((n) => [n, empty])),
      },
      outputs,
    );
  }

  release(): Promise<void> {
    this.kept = [];
    return this.session.release();
  }
}

const REQUIRED_INPUTS = ['input_ids', 'attention_mask'];
const OPTIONAL_INPUTS = ['token_type_ids'];

export class CrossEncoderSession {
  readonly inputNames: readonly string[];
  readonly hasTokenTypeIds: boolean;
  readonly threads: number;
  /** The prefix graph serving batches whose pairs share a prefix; undefined: every batch runs whole. */
  prefixGraph: PrefixGraph | undefined;
  /** Milliseconds per padded token of the last run (the load's test inference first): a deadline's first batch is sized by it. */
  msPerToken = 0;
  private constructor(
    private readonly session: ort.InferenceSession,
    threads: number,
    /** The id padding positions get: the model's pad token (see batchFeeds). */
    readonly padTokenId: number,
  ) {
    this.inputNames = session.inputNames;
    this.hasTokenTypeIds = session.inputNames.includes('token_type_ids');
    this.threads = threads;
  }

  static async open(onnxPath: string, threads = availableParallelism(), padTokenId = 0): Promise<CrossEncoderSession> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(onnxPath, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        // Memory patterns are planned per input shape; with every batch a new (pairs, length)
        // shape they pile up and RSS creeps for minutes under load.
        enableMemPattern: false,
      });
    } catch (err) {
      throw new ModelLoadError(`cannot load ONNX model ${onnxPath}: ${(err as Error).message}`);
    }
    const unexpected = session.inputNames.filter((n) => !REQUIRED_INPUTS.includes(n) && !OPTIONAL_INPUTS.includes(n));
    const missing = REQUIRED_INPUTS.filter((n) => !session.inputNames.includes(n));
    if (unexpected.length || missing.length) {
      await session.release();
      throw new ModelLoadError(
        `${onnxPath}: graph inputs are [${session.inputNames.join(', ')}]; expected input_ids, attention_mask and optionally token_type_ids`,
      );
    }
    if (!session.outputNames.includes('logits')) {
      await session.release();
      throw new ModelLoadError(`${onnxPath}: graph outputs are [${session.outputNames.join(', ')}]; expected logits of shape [batch, labels]`);
    }
    return new CrossEncoderSession(session, threads, padTokenId);
  }

  /** Logits for a batch, padded to its longest pair; rows in input order. */
  async run(batch: readonly EncodedPair[]): Promise<{ logits: Float32Array; labels: number }> {
    const started = performance.now();
    const p = this.prefixGraph ? PrefixGraph.sharedPrefix(batch) : 0;
    const out = p > 0 ? await this.prefixGraph!.run(batch, p) : await this.runWhole(batch);
    this.msPerToken = (performance.now() - started) / (batch.length * batch.reduce((m, pair) => Math.max(m, pair.inputIds.length), 0));
    return out;
  }

  /** The plain graph, whatever prefixes the pairs share. */
  async runWhole(batch: readonly EncodedPair[]): Promise<{ logits: Float32Array; labels: number }> {
    const feeds = batchFeeds(batch, this.hasTokenTypeIds, this.padTokenId);
    const out = await this.session.run(feeds);
    const logits = out.logits;
    if (logits.dims.length !== 2 || logits.dims[0] !== batch.length || logits.type !== 'float32') {
      throw new Error(`model returned logits of shape [${logits.dims.join(', ')}] (${logits.type}); expected float32 [${batch.length}, labels]`);
    }
    return { logits: logits.data as Float32Array, labels: Number(logits.dims[1]) };
  }

  async release(): Promise<void> {
    await this.prefixGraph?.release();
    return this.session.release();
  }
}

/**
 * The graph inputs for a batch: every pair padded on the right with `padTokenId` to the batch's
 * longest, mask 1 on real tokens.
 *
 * Why the pad token and why the right: a decoder sequence classifier (Qwen2/Qwen3ForSequenceClassification)
 * reads its score at the last position whose id is not pad_token_id, a rule exported into the graph;
 * padding with 0 (a real token there) would move that position onto the padding. On the right, a
 * pair's tokens keep positions 0..n-1 and, with causal attention, never see the padding after them,
 * so its score is the one it gets alone, whatever its batch neighbours. Left padding (the
 * tokenizer_config's padding_side for Qwen) shifts every position by the padding length, so the
 * same pair would score differently (in float noise at least) next to a longer one.
 */
export function batchFeeds(batch: readonly EncodedPair[], withTokenTypes: boolean, padTokenId = 0): Record<string, ort.Tensor> {
  const width = batch.reduce((m, p) => Math.max(m, p.inputIds.length), 0);
  if (batch.some((p) => p.inputIds.length === 0)) throw new Error('a pair with no tokens in the batch: there is nothing to score it by');
  const size = batch.length * width;
  const ids = new BigInt64Array(size);
  if (padTokenId !== 0) ids.fill(BigInt(padTokenId));
  const mask = new BigInt64Array(size);
  const types = withTokenTypes ? new BigInt64Array(size) : null;
  batch.forEach((pair, row) => {
    const offset = row * width;
    for (let i = 0; i < pair.inputIds.length; i++) {
      ids[offset + i] = BigInt(pair.inputIds[i]);
      mask[offset + i] = 1n;
      if (types) types[offset + i] = BigInt(pair.typeIds[i]);
    }
  });
  const dims = [batch.length, width];
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', ids, dims),
    attention_mask: new ort.Tensor('int64', mask, dims),
  };
  if (types) feeds.token_type_ids = new ort.Tensor('int64', types, dims);
  return feeds;
}

export const onnxRuntimeVersion: string = ort.env.versions?.node ?? 'unknown';
