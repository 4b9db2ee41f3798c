/**
 * Owns the engine's lifetime: the server answers the MCP handshake at once while the model
 * loads in the background, and every tool call waits here for it.
 */
import { CrossEncoder, type ModelOptions } from '../model/cross-encoder.js';
import { ScoringEngine, type EngineOptions } from './scoring-engine.js';

export class EngineHost {
  private engine: ScoringEngine | undefined;
  private readonly loading: Promise<ScoringEngine>;

  constructor(modelOptions: ModelOptions, engineOptions: EngineOptions) {
    this.loading = CrossEncoder.load(modelOptions).then((model) => {
      this.engine = new ScoringEngine(model, engineOptions);
      return this.engine;
    });
    // A failed load is reported by whoever awaits ready(); this keeps it from being unhandled meanwhile.
    this.loading.catch(() => undefined);
  }

  static fromEngine(engine: ScoringEngine): EngineHost {
    const host = Object.create(EngineHost.prototype) as EngineHost;
    Object.assign(host, { engine, loading: Promise.resolve(engine) });
    return host;
  }

  /** The engine, once its model has loaded. */
  ready(): Promise<ScoringEngine> {
    return this.loading;
  }

  get loaded(): boolean {
    return this.engine !== undefined;
  }
}
