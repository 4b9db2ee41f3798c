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
}

const REQUIRED_INPUTS = ['input_ids', 'attention_mask'];
const OPTIONAL_INPUTS = ['token_type_ids'];

export class CrossEncoderSession {
  readonly inputNames: readonly string[];
  readonly hasTokenTypeIds: boolean;
  readonly threads: number;
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
    const feeds = batchFeeds(batch, this.hasTokenTypeIds, this.padTokenId);
    const out = await this.session.run(feeds);
    const logits = out.logits;
    if (logits.dims.length !== 2 || logits.dims[0] !== batch.length || logits.type !== 'float32') {
      throw new Error(`model returned logits of shape [${logits.dims.join(', ')}] (${logits.type}); expected float32 [${batch.length}, labels]`);
    }
    return { logits: logits.data as Float32Array, labels: Number(logits.dims[1]) };
  }

  release(): Promise<void> {
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
