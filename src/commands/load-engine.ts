import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import { CrossEncoder, type ModelOptions } from '../model/cross-encoder.js';
import { ScoringEngine, type EngineOptions } from '../engine/scoring-engine.js';

export function modelOptionsFrom(config: Config): ModelOptions {
  if (!config.model) throw new ConfigError('no model given: pass --model <dir> or set RERANK_MODEL');
  return { model: config.model, variant: config.variant, maxLength: config.maxLength, activation: config.activation, threads: config.threads };
}

export function loadModel(config: Config): Promise<CrossEncoder> {
  return CrossEncoder.load(modelOptionsFrom(config));
}

export function engineOptionsFrom(config: Config): EngineOptions {
  return { maxBatchTokens: config.maxBatchTokens, batchWaitMs: config.batchWaitMs, chunkOverlap: config.chunkOverlap };
}

export async function loadEngine(config: Config): Promise<ScoringEngine> {
  // One caller, nothing to wait for: batches start at once.
  return new ScoringEngine(await loadModel(config), { ...engineOptionsFrom(config), batchWaitMs: 0 });
}
