import type { Config } from '../config.js';
import { CrossEncoder, type ModelOptions } from '../model/cross-encoder.js';
import { ScoringEngine, type EngineOptions } from '../engine/scoring-engine.js';
import { resolveModel } from '../hub/resolve-model.js';
import { progressPrinter, type ProgressEvent } from '../hub/progress.js';
import { log } from '../log.js';

/**
 * The model directory for --model: a local directory as it is, or a Hugging Face repo id
 * (the default model when none is given) fetched into the HF cache. Progress goes to stderr.
 */
export async function prepareModel(config: Config, onProgress?: (p: ProgressEvent) => void): Promise<ModelOptions> {
  const printer = progressPrinter();
  const resolved = await resolveModel(config.model, {
    variant: config.variant,
    log,
    onProgress: (p) => {
      printer(p);
      onProgress?.(p);
    },
  });
  return { model: resolved.dir, variant: config.variant, maxLength: config.maxLength, promptTemplate: config.promptTemplate, prefixReuse: config.prefixReuse, activation: config.activation, threads: config.threads };
}

export async function loadModel(config: Config): Promise<CrossEncoder> {
  return CrossEncoder.load(await prepareModel(config));
}

export function engineOptionsFrom(config: Config): EngineOptions {
  return { maxBatchTokens: config.maxBatchTokens, batchWaitMs: config.batchWaitMs, chunkOverlap: config.chunkOverlap, maxCallTokens: config.maxCallTokens, maxCallMs: config.maxCallMs };
}

export async function loadEngine(config: Config): Promise<ScoringEngine> {
  // One caller, nothing to wait for: batches start at once; a file of pairs is as large as it is.
  return new ScoringEngine(await loadModel(config), { ...engineOptionsFrom(config), batchWaitMs: 0, maxCallTokens: 0 });
}
