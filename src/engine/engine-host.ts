/**
 * Owns the engine's lifetime. The model is fetched (if it is named by repo id) and loaded
 * once start() is called, which the server does after the MCP handshake: creating an ONNX
 * Runtime session blocks the event loop, so starting earlier would hold the handshake back.
 * Every tool call waits here for the model (and starts the load if nothing has yet). A load
 * that fails (no network, empty cache) fails the calls waiting for it, not the process: the
 * next call tries again, since the network may be back. A reload (SIGHUP, or the model
 * directory changing) loads the new model beside the old one and switches atomically: calls
 * already running finish on the old engine, which is released after them.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { CrossEncoder, type ModelOptions } from '../model/cross-encoder.js';
import { ScoringEngine, type EngineOptions } from './scoring-engine.js';
import type { BatchRun } from './batch-queue.js';
import { ScoreCache } from './score-cache.js';
import { TokenizerPool } from './tokenizer-pool.js';
import type { ProgressEvent } from '../hub/progress.js';
import { log } from '../log.js';

export type ModelState = 'idle' | 'loading' | 'ready' | 'failed';

/** The model could not be fetched or loaded; the message is one line that says how to fix it. */
export class ModelUnavailableError extends Error {}

export class EngineHost {
  private engine: ScoringEngine | undefined;
  private modelOptions: ModelOptions | undefined;
  private loading: Promise<ScoringEngine> | undefined;
  private reloads: Promise<unknown> = Promise.resolve();
  private watchers: FSWatcher[] = [];
  private lastError: string | undefined;
  private firstLoad!: () => void;
  /** Settles when a model first becomes available; never rejects, since a failed load is retried. */
  private readonly loadedOnce = new Promise<void>((resolve) => (this.firstLoad = resolve));
  /** 'download' events while the model files are fetched, for callers waiting on ready(). */
  readonly progress = new EventEmitter<{ download: [ProgressEvent] }>();
  /** Since start, for metrics: reloads that switched models, failed ones, and switches to another served version (a promotion or rollback). */
  readonly counters = { reloads: 0, reloadFailures: 0, versionSwitches: 0 };
  private batchObserver: ((batch: BatchRun) => void) | undefined;

  constructor(
    /** Where the model comes from: resolves (downloading if needed) to a loadable directory. */
    private readonly prepare: (onProgress: (p: ProgressEvent) => void) => Promise<ModelOptions>,
    private readonly engineOptions: EngineOptions,
    /** Shared by successive models: entries are keyed by model identity, so none is served stale. */
    readonly cache: ScoreCache = new ScoreCache(0),
    /** The model as the user named it (directory or repo id), for reports made before it loads. */
    readonly modelName = '',
  ) {}

  /**
   * Begins fetching and loading the model; later calls share the load under way or its
   * engine. After a failed attempt the next call starts a new one.
   */
  start(): Promise<ScoringEngine> {
    if (!this.loading) {
      const started = performance.now();
      const attempt = this.prepare((p) => this.progress.emit('download', p)).then(async (options) => {
        this.modelOptions = options;
        const engine = await this.load();
        const { model } = engine;
        log(`model loaded in ${Math.round(performance.now() - started)} ms: ${model.files.onnxPath} (${model.activation}, max_length ${model.maxLength})`);
        this.lastError = undefined;
        this.firstLoad();
        return engine;
      });
      const loading: Promise<ScoringEngine> = attempt.catch((err: unknown) => {
        const reason = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
        this.lastError = reason;
        if (this.loading === loading) this.loading = undefined;
        log(`error: ${reason}`);
        throw new ModelUnavailableError(`${reason} (the next call tries again)`);
      });
      this.loading = loading;
      // A failed load is reported by whoever awaits ready(); this keeps it from being unhandled meanwhile.
      loading.catch(() => undefined);
    }
    return this.loading;
  }

  /** loading: an attempt is under way; failed: the last attempt failed (see `error`), none is under way. */
  get state(): ModelState {
    if (this.engine) return 'ready';
    if (this.loading) return 'loading';
    return this.lastError === undefined ? 'idle' : 'failed';
  }

  /** Why the last attempt to load the model failed, while no model is loaded. */
  get error(): string | undefined {
    return this.engine ? undefined : this.lastError;
  }

  private async load(): Promise<ScoringEngine> {
    // The engine's tokenizer workers parse tokenizer.json too, so a large one never stalls the event loop.
    const model = await CrossEncoder.load(this.modelOptions!, (path, configPath) => TokenizerPool.open(path, configPath));
    const engine = new ScoringEngine(model, this.engineOptions, this.cache);
    engine.queue.onBatch = this.batchObserver;
    this.engine = engine;
    return engine;
  }

  /** The engine, once its model has loaded. */
  ready(): Promise<ScoringEngine> {
    return this.start();
  }

  get loaded(): boolean {
    return this.engine !== undefined;
  }

  /** The engine serving now, if any, without waiting: for metrics read at scrape time. */
  get current(): ScoringEngine | undefined {
    return this.engine;
  }

  /** Tells `observer` of every batch run, by this engine and the ones reloads bring. */
  observeBatches(observer: (batch: BatchRun) => void): void {
    this.batchObserver = observer;
    if (this.engine) this.engine.queue.onBatch = observer;
  }

  /**
   * Loads the model directory again and switches to it. Reloads run one at a time; a
   * failed one leaves the current model serving.
   */
  reload(reason: string): Promise<ScoringEngine> {
    const next = this.reloads.then(async () => {
      // Nothing loaded yet (the first load failed or is under way): a reload is one more attempt at it.
      if (!this.engine) return this.start();
      const old = await this.start();
      const started = performance.now();
      const engine = await this.load();
      this.loading = Promise.resolve(engine);
      this.counters.reloads++;
      if (engine.model.files.dir !== old.model.files.dir) this.counters.versionSwitches++;
      log(`model reloaded (${reason}) in ${Math.round(performance.now() - started)} ms: ${engine.model.id}`);
      void old.retire();
      return engine;
    });
    this.reloads = next.catch((err) => {
      // A failed first load has already logged its reason.
      if (this.engine) this.counters.reloadFailures++;
      if (this.engine) log(`error: reload (${reason}) failed, the previous model keeps serving: ${(err as Error).message}`);
    });
    return next;
  }

  /**
   * Reloads when files in the model's directory change, once writes have been quiet for `quietMs`.
   * The directory as named is watched, not the version it serves: a promotion's one visible step
   * is the rename of DIR/current there (src/commands/model-swap.ts), and a plain directory
   * changes there and in onnx/.
   */
  async watchModelDir(quietMs = 1000): Promise<void> {
    await this.loadedOnce;
    const dir = this.engine!.model.files.root;
    let timer: NodeJS.Timeout | undefined;
    const changed = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void this.reload('model files changed').catch(() => undefined), quietMs);
    };
    for (const path of [dir, join(dir, 'onnx')]) {
      try {
        const watcher = watch(path, changed);
        watcher.on('error', () => undefined);
        this.watchers.push(watcher);
      } catch {
        // onnx/ is optional: a model may keep model.onnx at the top level
      }
    }
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}
