import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import { CrossEncoder, type ModelOptions } from '../model/cross-encoder.js';
import { ScoringEngine } from '../engine/scoring-engine.js';

export function modelOptionsFrom(config: Config): ModelOptions {
  if (!config.model) throw new ConfigError('no model given: pass --model <dir> or set RERANK_MODEL');
  return { model: config.model, variant: config.variant, maxLength: config.maxLength, activation: config.activation, threads: config.threads };
}

export function loadModel(config: Config): Promise<CrossEncoder> {
  return CrossEncoder.load(modelOptionsFrom(config));
}

export async function loadEngine(config: Config): Promise<ScoringEngine> {
  return new ScoringEngine(await loadModel(config), { maxBatchTokens: config.maxBatchTokens, batchWaitMs: 0 });
}
