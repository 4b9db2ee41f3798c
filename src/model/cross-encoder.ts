/**
 * A loaded cross-encoder: tokenizer, ONNX session and the rules (max length, activation,
 * labels) that turn a (query, document) pair into the score sentence-transformers gives.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { log } from '../log.js';
import { PairTokenizer, type PairEncoding } from '../tokenizer/pair-tokenizer.js';
import { defaultInstruction, resolvePromptTemplate, type PromptOptions, type PromptTemplateName, type PromptTemplateSetting } from '../tokenizer/prompt-template.js';
import { InThreadTokenizer, type TokenizerService } from '../tokenizer/tokenizer-service.js';
import { activationFromConfig, applyActivation, pairLogit, type Activation } from './activation.js';
import { ModelLoadError, readJsonFile, resolveModelFiles, type ModelFiles, type Variant } from './model-dir.js';
import { CrossEncoderSession, onnxRuntimeVersion, PrefixGraph } from './onnx-session.js';
import { dirname } from 'node:path';

export interface ModelOptions {
  model: string;
  variant: Variant;
  /**
   * Tokens per pair. Without it: the model's own maximum, or LONG_CONTEXT_CAP where that is over KEPT_AS_DECLARED; with it,
   * anything up to the model's maximum.
   */
  maxLength?: number;
  /** `auto` (default): the template config.json's reranker family needs (see prompt-template.ts). */
  promptTemplate?: PromptTemplateSetting;
  /** Overrides the activation from config.json. */
  activation?: Activation;
  threads?: number;
  /**
   * `auto` (default): score through onnx/model_past.onnx when it lies beside the fp32 graph (with
   * --variant int8, onnx/model_past_quantized.onnx), running the prefix every pair of a batch shares
   * once (see PrefixGraph); `off`: always the plain graph.
   */
  prefixReuse?: PrefixReuse;
}

export type PrefixReuse = 'auto' | 'off';
/** The graph python/decoder_past.py writes beside model.onnx. */
export const PREFIX_GRAPH_FILE = 'model_past.onnx';
/** The int8 variant's prefix graph (python/decoder_past.py quantize_past): dynamic int8, as model_quantized.onnx. */
export const PREFIX_GRAPH_INT8_FILE = 'model_past_quantized.onnx';

/** Opens the tokenizer of a model directory: in this thread unless the caller (the engine) brings worker threads. */
export type OpenTokenizer = (tokenizerPath: string, tokenizerConfigPath: string | null) => Promise<TokenizerService>;

const inThread: OpenTokenizer = async (path, configPath) => InThreadTokenizer.fromFiles(path, configPath);

/**
 * The most tokens a pair may have when config.json's max_position_embeddings is not a
 * plausible size (1e12 was taken at its word, and long inputs then failed inside ONNX
 * Runtime): 131 072 is the longest context rerankers declare (Qwen3-Reranker, mxbai-rerank-v2).
 * By default a pair is also held to LONG_CONTEXT_CAP, and a model that cannot take even that
 * is found by the full-length test inference at load.
 */
export const MAX_PLAUSIBLE_LENGTH = 131_072;
/** What a model gets when a full-length test inference fails: BERT's positions. */
const FALLBACK_LENGTH = 512;

export interface ModelInfo {
  path: string;
  onnx_file: string;
  variant: Variant;
  input_names: string[];
  max_length: number;
  /** Why max_length is not what the model's files say, when it is not. */
  max_length_note?: string;
  activation: Activation;
  num_labels: number;
  /** Which proven tokenizer family encodes the pairs (see README, Tokenizer families). */
  tokenizer_family: string;
  /** False when the tokenizer is outside the proven families: ids may differ from Python's. */
  tokenizer_verified: boolean;
  /** The prompt pairs are put in (`none`: the raw pair), and its default instruction when it has one. */
  prompt_template: PromptTemplateName;
  default_instruction?: string;
  /** The id padding positions get (the model's pad token). */
  pad_token_id: number;
  onnxruntime_version: string;
  threads: number;
  /** Which graph scores batches: `prefix-reuse` (shared prefixes run once, PREFIX_GRAPH_FILE or for int8 PREFIX_GRAPH_INT8_FILE, named in prefix_graph) or `plain`. */
  inference: 'prefix-reuse' | 'plain';
  prefix_graph?: string;
}

export class CrossEncoder {
  private constructor(
    readonly files: ModelFiles,
    /** Where pairs are tokenized: worker threads in the server, this thread in the CLI. */
    readonly tokenizers: TokenizerService,
    readonly session: CrossEncoderSession,
    readonly maxLength: number,
    readonly activation: Activation,
    readonly numLabels: number,
    readonly promptTemplate: PromptTemplateName,
    /**
     * Changes whenever anything that decides a score does (ONNX file, variant, tokenizer
     * files, config.json, activation, max length): scores cached under another id are not reused.
     */
    readonly id: string,
    readonly maxLengthNote?: string,
  ) {}

  private local: PairTokenizer | undefined;

  /**
   * A tokenizer on this thread, parsed on first use: for tests and tools that encode one pair
   * at a time synchronously. The engine never uses it.
   */
  get tokenizer(): PairTokenizer {
    if (this.tokenizers instanceof InThreadTokenizer) return this.tokenizers.tokenizer;
    this.local ??= PairTokenizer.fromFiles(this.files.tokenizerPath, this.files.tokenizerConfigPath);
    return this.local;
  }

  static async load(options: ModelOptions, openTokenizer: OpenTokenizer = inThread): Promise<CrossEncoder> {
    const files = resolveModelFiles(options.model, options.variant);
    const config = readJsonFile(files.configPath);
    const tokenizerConfig = files.tokenizerConfigPath ? readJsonFile(files.tokenizerConfigPath) : {};
    let tokenizers: TokenizerService;
    try {
      tokenizers = await openTokenizer(files.tokenizerPath, files.tokenizerConfigPath);
    } catch (err) {
      const message = (err as Error).message;
      throw new ModelLoadError(message.includes(files.tokenizerPath) ? message : `${files.tokenizerPath}: ${message}`);
    }
    const tokenizer = tokenizers.description;
    try {
      if (!tokenizer.verified) {
        log(`warning: ${files.tokenizerPath}: tokenizer not verified (${tokenizer.family.replace(/^unverified: /, '')}); token ids and scores may differ from sentence-transformers. Proven families: bert-wordpiece, xlmr-unigram, bytelevel-bpe`);
      }
      let { maxLength, note } = resolveMaxLengthNoted(config, tokenizerConfig, options.maxLength);
      const promptTemplate = resolvePromptTemplate(options.promptTemplate, config);
      const overhead = tokenizer.addedTokens + tokenizer.promptOverheads[promptTemplate];
      if (maxLength <= overhead + 1) {
        const what = promptTemplate === 'none' ? `${tokenizer.addedTokens} special tokens` : `the ${promptTemplate} prompt's ${overhead} tokens`;
        throw new ModelLoadError(`max length ${maxLength} leaves no room for a query and a document after ${what}; raise --max-length`);
      }
      const padTokenId = resolvePadTokenId(config, tokenizer.padTokenId);
      const session = await CrossEncoderSession.open(files.onnxPath, options.threads, padTokenId);
      const prompt: PromptOptions = { template: promptTemplate };
      const encode = async (query: string, document: string, length: number) =>
        (await tokenizers.call().encode({ pairs: [{ query, document }], maxLength: length, mode: 'truncate', overlap: 0, limit: 0, prompt })).windows[0][0];
      let numLabels: number;
      try {
        if (note) {
          // The files' length was implausible: prove the graph takes a full-length pair, or fall back.
          const full = await encode('query', 'a '.repeat(maxLength), maxLength);
          try {
            await session.run([full]);
          } catch {
            note = `${note}; a ${maxLength}-token test inference failed, so ${FALLBACK_LENGTH}`;
            maxLength = Math.min(maxLength, FALLBACK_LENGTH);
          }
          log(`warning: ${files.configPath}: ${note} (set --max-length to choose)`);
        }
        // One pair through the graph proves its output shape before any request depends on it.
        numLabels = (await session.run([await encode('query', 'document', maxLength)])).labels;
      } catch (err) {
        await session.release();
        throw new ModelLoadError(`${files.onnxPath}: test inference failed: ${(err as Error).message}`);
      }
      if (numLabels !== 1 && numLabels !== 2) {
        await session.release();
        throw new ModelLoadError(`${files.onnxPath}: logits have ${numLabels} labels; expected 1 (relevance logit) or 2 (softmax, label 1 = relevant)`);
      }
      if ((options.prefixReuse ?? 'auto') === 'auto') session.prefixGraph = await openPrefixGraph(files, config, session, await encode('query', 'a document the prefix graph is checked with', maxLength));
      let activation: Activation;
      try {
        activation = options.activation ?? activationFromConfig(config, numLabels);
      } catch (err) {
        await session.release();
        throw new ModelLoadError(`${files.configPath}: ${(err as Error).message}`);
      }
      const stat = statSync(files.onnxPath);
      const fingerprint = modelFingerprint(files, stat.size, tokenizer.fileHash, { activation, maxLength, numLabels, promptTemplate, padTokenId });
      const id = `${files.dir}#${options.variant}@${stat.mtime.toISOString()}/${stat.size}~${fingerprint}`;
      return new CrossEncoder(files, tokenizers, session, maxLength, activation, numLabels, promptTemplate, id, note);
    } catch (err) {
      await tokenizers.close();
      throw err;
    }
  }

  /** How a call's pairs are prompted; throws the one-line error for an instruction the model has no place for. */
  prompt(instruction?: string): PromptOptions {
    if (instruction !== undefined && this.promptTemplate === 'none') {
      throw new InstructionError(`instruction given, but ${this.files.dir} runs without a prompt template (--prompt-template none); drop the instruction, or serve a Qwen3-Reranker or mxbai-rerank-v2 model with --prompt-template auto`);
    }
    return { template: this.promptTemplate, instruction };
  }

  encode(query: string, document: string, instruction?: string): PairEncoding {
    return requireTokens(this.tokenizer.encodePair(query, document, this.maxLength, this.prompt(instruction)));
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
      ...(this.maxLengthNote ? { max_length_note: this.maxLengthNote } : {}),
      activation: this.activation,
      num_labels: this.numLabels,
      tokenizer_family: this.tokenizers.description.family,
      tokenizer_verified: this.tokenizers.description.verified,
      prompt_template: this.promptTemplate,
      ...(defaultInstruction(this.promptTemplate) !== null ? { default_instruction: defaultInstruction(this.promptTemplate)! } : {}),
      pad_token_id: this.session.padTokenId,
      onnxruntime_version: onnxRuntimeVersion,
      threads: this.session.threads,
      inference: this.session.prefixGraph ? 'prefix-reuse' : 'plain',
      ...(this.session.prefixGraph ? { prefix_graph: this.session.prefixGraph.path } : {}),
    };
  }

  async release(): Promise<void> {
    await this.tokenizers.close();
    await this.session.release();
  }
}

/**
 * The prefix graph for the variant beside its plain graph (fp32: PREFIX_GRAPH_FILE, int8:
 * PREFIX_GRAPH_INT8_FILE), when there is one and it agrees with the plain graph on a pair (a graph
 * left from an earlier export would not): otherwise undefined, with a warning.
 */
async function openPrefixGraph(files: ModelFiles, config: Record<string, unknown>, session: CrossEncoderSession, pair: PairEncoding): Promise<PrefixGraph | undefined> {
  const path = join(dirname(files.onnxPath), files.variant === 'int8' ? PREFIX_GRAPH_INT8_FILE : PREFIX_GRAPH_FILE);
  if (!existsSync(path)) return undefined;
  const heads = Number(config.num_attention_heads);
  const shape = { kvHeads: Number(config.num_key_value_heads ?? heads), headDim: Number(config.head_dim ?? Number(config.hidden_size) / heads) };
  let graph: PrefixGraph | undefined;
  try {
    graph = await PrefixGraph.open(path, session.threads, shape, session.padTokenId);
    const whole = (await session.runWhole([pair])).logits[0];
    // fp32: the pair split into a prefix and a suffix, as served. int8: dynamic quantization scales each
    // activation tensor by its own range, so a split run differs from the whole one by quantization
    // noise (up to 0.7 logit on the tiny fixtures), too close to what a graph from other weights gives;
    // run whole through the prefix graph it quantizes the same tensors as the plain graph and agrees
    // to the bit, so the same bound catches weights that differ even slightly (a stale export).
    const split = files.variant === 'int8'
      ? (await graph.logitsAlone(pair.inputIds))[0]
      : (await graph.run([pair], Math.max(1, pair.inputIds.length - 3))).logits[0];
    if (!(Math.abs(whole - split) <= 1e-3)) throw new Error(`its logit ${split} on a test pair is not the plain graph's ${whole}: it was exported from other weights${files.variant === 'int8' ? ` or quantized otherwise than ${files.onnxPath}` : ''}; export again (rerank-mcp finetune --epochs 0) or delete it`);
    return graph;
  } catch (err) {
    await graph?.release();
    log(`warning: ${path}: ${(err as Error).message.replace(new RegExp(`^cannot load ONNX model ${path}: `), '')}; scoring with the plain graph`);
    return undefined;
  }
}

/**
 * Thrown for a pair that gives no token at all (the tokenizer returns none, as Python's does): a
 * decoder graph has no last token to read its score from, and an encoder none to pool.
 */
export class EmptyPairError extends Error {
  constructor() {
    super('query and document give no tokens at all (both empty, and the model adds no special tokens): send a non-empty query or document, or serve the model with its prompt template');
    this.name = 'EmptyPairError';
  }
}

export function requireTokens<T extends { inputIds: number[] }>(encoding: T): T {
  if (encoding.inputIds.length === 0) throw new EmptyPairError();
  return encoding;
}

/** An `instruction` for a model served without a prompt template. */
export class InstructionError extends Error {}

/**
 * The model's pad token: config.json's pad_token_id, else the id of tokenizer_config's pad_token,
 * else 0 (BERT's [PAD]). Decoder classifiers pool the last token that is not it.
 */
export function resolvePadTokenId(config: Record<string, unknown>, tokenizerPadId: number | undefined): number {
  if (typeof config.pad_token_id === 'number' && config.pad_token_id >= 0) return config.pad_token_id;
  return tokenizerPadId ?? 0;
}

/**
 * The longest pairs a model gets unless --max-length asks for more. Decoder rerankers declare
 * 32 768 to 131 072 tokens; attention memory grows with the square of the length (measured in
 * docs/long-context.md: ~5.5 GB of working memory at 4096 tokens, ~22 GB at 8192), so an accidental huge document must not cost that by default.
 */
export const LONG_CONTEXT_CAP = 4096;
/**
 * A model that declares at most this many tokens keeps them by default, as sentence-transformers
 * does: bge-reranker-v2-m3 (XLM-R, 8192) and gte-reranker-modernbert (8192) are exact at their own
 * length. Beyond it (decoder rerankers, 32 768 and up) the default is LONG_CONTEXT_CAP.
 */
export const KEPT_AS_DECLARED = 8192;

// Model types whose position ids start after the padding index (RoBERTa's create_position_ids_from_input_ids):
// a sequence can use max_position_embeddings - padding_idx - 1 positions, 512 of XLM-R's 514.
const OFFSET_POSITION_MODEL_TYPES = new Set(['roberta', 'xlm-roberta', 'xlm-roberta-xl', 'camembert', 'data2vec-text', 'longformer', 'mpnet', 'roberta-prelayernorm', 'ernie_m']);

const EDGE_BYTES = 1 << 20;

/** Feeds the first and last EDGE_BYTES of a file to `hash`. */
function hashEdges(hash: Hash, path: string, size: number): void {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(Math.min(EDGE_BYTES, size));
    readSync(fd, head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(EDGE_BYTES, size));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    hash.update(head).update(tail);
  } finally {
    closeSync(fd);
  }
}

/**
 * A hash of everything besides the ONNX file's path, mtime and size that changes a score:
 * the first and last MiB of the ONNX file (a copy with the same size and mtime but other
 * weights differs there: the graph's weights sit at the end, its header at the start;
 * hashing a multi-GB file whole would add seconds to every load), the tokenizer and config
 * files as read, and the settings resolved from them and from the command line.
 */
function modelFingerprint(files: ModelFiles, size: number, tokenizerHash: string, resolved: Record<string, unknown>): string {
  const hash = createHash('sha256');
  hashEdges(hash, files.onnxPath, size);
  // External weights: their size and edges, as for the graph (a fine-tune changes them, not the graph).
  for (const path of files.externalDataPaths) {
    const stat = statSync(path);
    hash.update(`\0${path}\0${stat.size}\0${stat.mtimeMs}\0`);
    hashEdges(hash, path, stat.size);
  }
  const specialTokens = join(files.dir, 'special_tokens_map.json');
  // tokenizer.json (up to 64 MiB) was read and hashed by whoever parsed it, off this thread in the server.
  hash.update(`\0${files.tokenizerPath}\0${tokenizerHash}`);
  for (const path of [files.configPath, files.tokenizerConfigPath, existsSync(specialTokens) ? specialTokens : null]) {
    hash.update(`\0${path ?? ''}\0`);
    if (path) hash.update(readFileSync(path));
  }
  hash.update(JSON.stringify({ variant: files.variant, ...resolved }));
  return hash.digest('base64url').slice(0, 16);
}

/**
 * tokenizer_config's model_max_length capped by the positions the model has (512 when neither
 * says), as sentence-transformers caps it by max_position_embeddings, less the padding offset
 * where positions start after it. That is the most `requested` can ask for; without a request
 * it is LONG_CONTEXT_CAP where the model's own is over KEPT_AS_DECLARED.
 */
export function resolveMaxLength(config: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, requested?: number): number {
  return resolveMaxLengthNoted(config, tokenizerConfig, requested).maxLength;
}

/** resolveMaxLength, with a note when the files' value was implausible and capped at MAX_PLAUSIBLE_LENGTH. */
export function resolveMaxLengthNoted(config: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, requested?: number): { maxLength: number; note?: string } {
  let positions = typeof config.max_position_embeddings === 'number' && config.max_position_embeddings > 0 ? config.max_position_embeddings : Infinity;
  if (typeof config.model_type === 'string' && OFFSET_POSITION_MODEL_TYPES.has(config.model_type)) {
    const pad = typeof config.pad_token_id === 'number' ? config.pad_token_id : 1;
    positions -= pad + 1;
  }
  const declared = typeof tokenizerConfig.model_max_length === 'number' ? tokenizerConfig.model_max_length : Infinity;
  let maxLength = Math.min(positions, declared);
  if (!Number.isFinite(maxLength)) maxLength = 512;
  let note: string | undefined;
  if (maxLength > MAX_PLAUSIBLE_LENGTH || !Number.isInteger(maxLength)) {
    note = `max_position_embeddings ${String(config.max_position_embeddings)} and model_max_length ${String(tokenizerConfig.model_max_length)} allow ${maxLength} tokens, which no reranker has: capped at ${MAX_PLAUSIBLE_LENGTH}`;
    maxLength = MAX_PLAUSIBLE_LENGTH;
  }
  if (requested !== undefined) return requested < maxLength ? { maxLength: requested } : { maxLength, note };
  if (maxLength > KEPT_AS_DECLARED) {
    maxLength = LONG_CONTEXT_CAP;
    if (note) note = `${note}, then at ${LONG_CONTEXT_CAP} by default`;
  }
  return { maxLength, note };
}
