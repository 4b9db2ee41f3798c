/**
 * A loaded cross-encoder: tokenizer, ONNX session and the rules (max length, activation,
 * labels) that turn a (query, document) pair into the score sentence-transformers gives.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { log } from '../log.js';
import { PairTokenizer, type PairEncoding } from '../tokenizer/pair-tokenizer.js';
import { activationFromConfig, applyActivation, pairLogit, type Activation } from './activation.js';
import { ModelLoadError, readJsonFile, resolveModelFiles, type ModelFiles, type Variant } from './model-dir.js';
import { CrossEncoderSession, onnxRuntimeVersion } from './onnx-session.js';

export interface ModelOptions {
  model: string;
  variant: Variant;
  /** Lowers the model's own maximum; never raises it. */
  maxLength?: number;
  /** Overrides the activation from config.json. */
  activation?: Activation;
  threads?: number;
}

export interface ModelInfo {
  path: string;
  onnx_file: string;
  variant: Variant;
  input_names: string[];
  max_length: number;
  activation: Activation;
  num_labels: number;
  /** Which proven tokenizer family encodes the pairs (see README, Tokenizer families). */
  tokenizer_family: string;
  /** False when the tokenizer is outside the proven families: ids may differ from Python's. */
  tokenizer_verified: boolean;
  onnxruntime_version: string;
  threads: number;
}

export class CrossEncoder {
  private constructor(
    readonly files: ModelFiles,
    readonly tokenizer: PairTokenizer,
    readonly session: CrossEncoderSession,
    readonly maxLength: number,
    readonly activation: Activation,
    readonly numLabels: number,
    /**
     * Changes whenever anything that decides a score does (ONNX file, variant, tokenizer
     * files, config.json, activation, max length): scores cached under another id are not reused.
     */
    readonly id: string,
  ) {}

  static async load(options: ModelOptions): Promise<CrossEncoder> {
    const files = resolveModelFiles(options.model, options.variant);
    const config = readJsonFile(files.configPath);
    const tokenizerConfig = files.tokenizerConfigPath ? readJsonFile(files.tokenizerConfigPath) : {};
    let tokenizer: PairTokenizer;
    try {
      tokenizer = new PairTokenizer(readJsonFile(files.tokenizerPath), tokenizerConfig);
    } catch (err) {
      throw new ModelLoadError(`${files.tokenizerPath}: ${(err as Error).message}`);
    }
    if (!tokenizer.verified) {
      log(`warning: ${files.tokenizerPath}: tokenizer not verified (${tokenizer.family.replace(/^unverified: /, '')}); token ids and scores may differ from sentence-transformers. Proven families: bert-wordpiece, xlmr-unigram, bytelevel-bpe`);
    }
    const maxLength = resolveMaxLength(config, tokenizerConfig, options.maxLength);
    if (maxLength <= tokenizer.template.addedTokens + 1) {
      throw new ModelLoadError(`max length ${maxLength} leaves no room for a query and a document after ${tokenizer.template.addedTokens} special tokens`);
    }
    const session = await CrossEncoderSession.open(files.onnxPath, options.threads);
    // One pair through the graph proves its output shape before any request depends on it.
    const probe = tokenizer.encodePair('query', 'document', maxLength);
    let numLabels: number;
    try {
      numLabels = (await session.run([probe])).labels;
    } catch (err) {
      await session.release();
      throw new ModelLoadError(`${files.onnxPath}: test inference failed: ${(err as Error).message}`);
    }
    if (numLabels !== 1 && numLabels !== 2) {
      await session.release();
      throw new ModelLoadError(`${files.onnxPath}: logits have ${numLabels} labels; expected 1 (relevance logit) or 2 (softmax, label 1 = relevant)`);
    }
    let activation: Activation;
    try {
      activation = options.activation ?? activationFromConfig(config, numLabels);
    } catch (err) {
      await session.release();
      throw new ModelLoadError(`${files.configPath}: ${(err as Error).message}`);
    }
    const stat = statSync(files.onnxPath);
    const fingerprint = modelFingerprint(files, stat.size, { activation, maxLength, numLabels });
    const id = `${files.dir}#${options.variant}@${stat.mtime.toISOString()}/${stat.size}~${fingerprint}`;
    return new CrossEncoder(files, tokenizer, session, maxLength, activation, numLabels, id);
  }

  encode(query: string, document: string): PairEncoding {
    return this.tokenizer.encodePair(query, document, this.maxLength);
  }

  /** The pair's logit (log-odds for two labels) and its score under the activation. */
  scoreRow(row: ArrayLike<number>): { logit: number; score: number } {
    const logit = pairLogit(row);
    return { logit, score: applyActivation(this.activation, logit) };
  }

  info(): ModelInfo {
    return {
      path: this.files.dir,
      onnx_file: this.files.onnxPath,
      variant: this.files.variant,
      input_names: [...this.session.inputNames],
      max_length: this.maxLength,
      activation: this.activation,
      num_labels: this.numLabels,
      tokenizer_family: this.tokenizer.family,
      tokenizer_verified: this.tokenizer.verified,
      onnxruntime_version: onnxRuntimeVersion,
      threads: this.session.threads,
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

// Model types whose position ids start after the padding index (RoBERTa's create_position_ids_from_input_ids):
// a sequence can use max_position_embeddings - padding_idx - 1 positions, 512 of XLM-R's 514.
const OFFSET_POSITION_MODEL_TYPES = new Set(['roberta', 'xlm-roberta', 'xlm-roberta-xl', 'camembert', 'data2vec-text', 'longformer', 'mpnet', 'roberta-prelayernorm', 'ernie_m']);

const EDGE_BYTES = 1 << 20;

/**
 * A hash of everything besides the ONNX file's path, mtime and size that changes a score:
 * the first and last MiB of the ONNX file (a copy with the same size and mtime but other
 * weights differs there: the graph's weights sit at the end, its header at the start;
 * hashing a multi-GB file whole would add seconds to every load), the tokenizer and config
 * files as read, and the settings resolved from them and from the command line.
 */
function modelFingerprint(files: ModelFiles, size: number, resolved: { activation: Activation; maxLength: number; numLabels: number }): string {
  const hash = createHash('sha256');
  const fd = openSync(files.onnxPath, 'r');
  try {
    const head = Buffer.alloc(Math.min(EDGE_BYTES, size));
    readSync(fd, head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(EDGE_BYTES, size));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    hash.update(head).update(tail);
  } finally {
    closeSync(fd);
  }
  const specialTokens = join(files.dir, 'special_tokens_map.json');
  for (const path of [files.configPath, files.tokenizerPath, files.tokenizerConfigPath, existsSync(specialTokens) ? specialTokens : null]) {
    hash.update(`\0${path ?? ''}\0`);
    if (path) hash.update(readFileSync(path));
  }
  hash.update(JSON.stringify({ variant: files.variant, ...resolved }));
  return hash.digest('base64url').slice(0, 16);
}

/**
 * tokenizer_config's model_max_length capped by the positions the model has (512 when neither
 * says), as sentence-transformers caps it by max_position_embeddings, less the padding offset
 * where positions start after it; `requested` can only lower it.
 */
export function resolveMaxLength(config: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, requested?: number): number {
  let positions = typeof config.max_position_embeddings === 'number' && config.max_position_embeddings > 0 ? config.max_position_embeddings : Infinity;
  if (typeof config.model_type === 'string' && OFFSET_POSITION_MODEL_TYPES.has(config.model_type)) {
    const pad = typeof config.pad_token_id === 'number' ? config.pad_token_id : 1;
    positions -= pad + 1;
  }
  const declared = typeof tokenizerConfig.model_max_length === 'number' ? tokenizerConfig.model_max_length : Infinity;
  let maxLength = Math.min(positions, declared);
  if (!Number.isFinite(maxLength)) maxLength = 512;
  if (requested !== undefined) maxLength = Math.min(maxLength, requested);
  return maxLength;
}
