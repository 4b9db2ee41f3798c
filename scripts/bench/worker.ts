/**
 * One benchmarked system in its own process, so that each gets its own peak RSS and none
 * shares a heap or a thread pool with another. Driven over IPC by scripts/bench.ts, which
 * runs the workers one at a time: only one system computes at any moment.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { OtherLoad, procStatusMb } from './procfs.js';
import { CLEAN_CORES, type BatchPlan, type Call, type CallResult, type DriverMessage, type InitMessage, type TuneResult, type WorkerMessage } from './protocol.js';

/** The built server code (dist/, what `node dist/cli.js` runs), typed by its sources. */
const DIST = new URL('../../dist/', import.meta.url);
const distModule = (rel: string): Promise<unknown> => import(new URL(rel, DIST).href);
type ModelDirModule = typeof import('../../src/model/model-dir.js');
type PairTokenizerModule = typeof import('../../src/tokenizer/pair-tokenizer.js');
type CrossEncoderModule = typeof import('../../src/model/cross-encoder.js');
type ScoringEngineModule = typeof import('../../src/engine/scoring-engine.js');
type OnnxSessionModule = typeof import('../../src/model/onnx-session.js');

interface BenchSystem {
  /** Reranks one call; returns one logit per document, in input order. */
  score(call: Call): Promise<number[]>;
  /** Processes besides this one that do the system's work (the stdio server). */
  helperPids(): number[];
  close(): Promise<Partial<Extract<WorkerMessage, { type: 'stats' }>>>;
  detail(): Record<string, unknown>;
}

/** One number per pair, as the server computes it: the logit, or label 1 minus label 0 for two labels. */
function rowLogit(data: Float32Array, row: number, labels: number): number {
  return labels === 1 ? data[row] : data[row * labels + 1] - data[row * labels];
}

// ---------------------------------------------------------------------------------------
// 1. raw onnxruntime-node: the project's tokenizer, length-sorted batches, a plain session.

class RawOrt implements BenchSystem {
  plan: BatchPlan = { label: 'one batch', maxPairs: Infinity, maxTokens: Infinity, memPattern: true };
  /** One session per memory-pattern setting tried; the measured worker only ever opens one. */
  private readonly sessions = new Map<boolean, ort.InferenceSession>();
  private constructor(
    private readonly tokenizer: InstanceType<PairTokenizerModule['PairTokenizer']>,
    /** The server's padding of a batch into graph inputs. */
    private readonly batchFeeds: OnnxSessionModule['batchFeeds'],
    private readonly maxLength: number,
    private readonly onnxPath: string,
    private readonly threads: number,
  ) {}

  static async load(init: InitMessage): Promise<RawOrt> {
    const { resolveModelFiles, readJsonFile } = (await distModule('model/model-dir.js')) as ModelDirModule;
    const { PairTokenizer } = (await distModule('tokenizer/pair-tokenizer.js')) as PairTokenizerModule;
    const { resolveMaxLength } = (await distModule('model/cross-encoder.js')) as CrossEncoderModule;
    const { batchFeeds } = (await distModule('model/onnx-session.js')) as OnnxSessionModule;
    const files = resolveModelFiles(init.modelDir, init.variant);
    const tokenizer = PairTokenizer.fromFiles(files.tokenizerPath, files.tokenizerConfigPath);
    // The same maximum length as CrossEncoder.load.
    const maxLength = resolveMaxLength(readJsonFile(files.configPath), files.tokenizerConfigPath ? readJsonFile(files.tokenizerConfigPath) : {});
    // The ceiling runs the plain export as anyone would; the server may serve the fused graph beside it (python/fuse_graph.py).
    const raw = new RawOrt(tokenizer, batchFeeds, maxLength, files.plainOnnxPath, init.threads);
    if (init.plan) raw.plan = init.plan;
    await raw.session();
    return raw;
  }

  /** A plain session: the given threads, all graph optimizations, the plan's memory-pattern setting. */
  async session(): Promise<ort.InferenceSession> {
    let session = this.sessions.get(this.plan.memPattern);
    if (!session) {
      session = await ort.InferenceSession.create(this.onnxPath, {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        enableMemPattern: this.plan.memPattern,
      });
      this.sessions.set(this.plan.memPattern, session);
    }
    return session;
  }

  private batches<T extends { length: number }>(sorted: T[]): T[][] {
    const out: T[][] = [];
    let current: T[] = [];
    for (const item of sorted) {
      if (current.length > 0 && (current.length >= this.plan.maxPairs || (current.length + 1) * item.length > this.plan.maxTokens)) {
        out.push(current);
        current = [];
      }
      current.push(item);
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  async score(call: Call): Promise<number[]> {
    const items = call.documents.map((document, index) => {
      const pair = this.tokenizer.encodePair(call.query, document, this.maxLength);
      return { index, pair, length: pair.inputIds.length };
    });
    items.sort((a, b) => a.length - b.length);
    const logits = new Array<number>(call.documents.length);
    const session = await this.session();
    const withTypes = session.inputNames.includes('token_type_ids');
    for (const batch of this.batches(items)) {
      const feeds = this.batchFeeds(batch.map((item) => item.pair), withTypes);
      const out = (await session.run(feeds)).logits;
      const labels = Number(out.dims[1]);
      batch.forEach((item, row) => (logits[item.index] = rowLogit(out.data as Float32Array, row, labels)));
    }
    // A reranker's answer is an order: rank as the others do (the cost is negligible).
    call.documents.map((_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
    return logits;
  }

  helperPids(): number[] {
    return [];
  }

  detail(): Record<string, unknown> {
    return { onnx_file: this.onnxPath, batching: `${this.plan.label}, mem pattern ${this.plan.memPattern ? 'on' : 'off'}`, max_length: this.maxLength, threads: this.threads };
  }

  async close() {
    for (const session of this.sessions.values()) await session.release();
    return {};
  }
}

// ---------------------------------------------------------------------------------------
// 2. @huggingface/transformers, used the way its docs show.

class TransformersJs implements BenchSystem {
  private constructor(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    private readonly tokenizer: any,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    private readonly model: any,
    private readonly batchSize: number,
    private readonly info: Record<string, unknown>,
  ) {}

  static async load(init: InitMessage): Promise<TransformersJs> {
    const { env, AutoTokenizer, AutoModelForSequenceClassification } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    const dtype = init.variant === 'int8' ? 'q8' : 'fp32'; // q8 = onnx/model_quantized.onnx
    const tokenizer = await AutoTokenizer.from_pretrained(init.modelDir, { local_files_only: true });
    const model = await AutoModelForSequenceClassification.from_pretrained(init.modelDir, {
      local_files_only: true,
      dtype,
      device: 'cpu', // onnxruntime-node's CPU execution provider
      session_options: { intraOpNumThreads: init.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' },
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const sessions = (model as any).sessions as Record<string, { config?: unknown }>;
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../node_modules/@huggingface/transformers/package.json', import.meta.url)), 'utf8'));
    return new TransformersJs(tokenizer, model, init.peerBatchSize, {
      transformers_version: pkg.version,
      dtype,
      session: sessions?.model?.config,
      batch_size: init.peerBatchSize,
    });
  }

  async score(call: Call): Promise<number[]> {
    const logits: number[] = [];
    for (let start = 0; start < call.documents.length; start += this.batchSize) {
      const docs = call.documents.slice(start, start + this.batchSize);
      const inputs = this.tokenizer(new Array(docs.length).fill(call.query), { text_pair: docs, padding: true, truncation: true });
      const out = await this.model(inputs);
      const labels = Number(out.logits.dims[1]);
      for (let row = 0; row < docs.length; row++) logits.push(rowLogit(out.logits.data as Float32Array, row, labels));
    }
    call.documents.map((_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
    return logits;
  }

  helperPids(): number[] {
    return [];
  }

  detail(): Record<string, unknown> {
    return this.info;
  }

  async close() {
    await this.model.dispose?.();
    return {};
  }
}

// ---------------------------------------------------------------------------------------
// 4. the engine in-process, configured as the server configures it.

class InProcessEngine implements BenchSystem {
  private constructor(private readonly engine: InstanceType<ScoringEngineModule['ScoringEngine']>) {}

  static async load(init: InitMessage): Promise<InProcessEngine> {
    const { CrossEncoder } = (await distModule('model/cross-encoder.js')) as CrossEncoderModule;
    const { ScoringEngine } = (await distModule('engine/scoring-engine.js')) as ScoringEngineModule;
    const model = await CrossEncoder.load({ model: init.modelDir, variant: init.variant, threads: init.threads });
    return new InProcessEngine(new ScoringEngine(model));
  }

  async score(call: Call): Promise<number[]> {
    const logits = new Array<number>(call.documents.length);
    for (const r of await this.engine.rerank(call.query, call.documents)) logits[r.index] = r.logit;
    return logits;
  }

  helperPids(): number[] {
    return [];
  }

  detail(): Record<string, unknown> {
    return { ...this.engine.model.info(), engine_options: this.engine.options };
  }

  async close() {
    await this.engine.model.release();
    return {};
  }
}

// ---------------------------------------------------------------------------------------
// 3. the server end to end: `node dist/cli.js` over MCP stdio, through the SDK client.

class StdioServer implements BenchSystem {
  private constructor(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    private readonly client: any,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    private readonly transport: any,
    private readonly args: string[],
    private readonly stderr: string[],
  ) {}

  static async load(init: InitMessage): Promise<StdioServer> {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StdioClientTransport, getDefaultEnvironment } = await import('@modelcontextprotocol/sdk/client/stdio.js');
    const cli = fileURLToPath(new URL('cli.js', DIST));
    const args = [cli, '--model', init.modelDir, '--variant', init.variant, '--threads', String(init.threads)];
    // In process (--standalone): the row measures one server, not the shared daemon (scripts/daemon-bench.ts does).
    const transport = new StdioClientTransport({ command: process.execPath, args, env: { ...getDefaultEnvironment(), RERANK_STANDALONE: '1' }, stderr: 'pipe' });
    const stderr: string[] = [];
    transport.stderr?.on('data', (chunk: Buffer) => {
      stderr.push(chunk.toString());
      if (stderr.length > 50) stderr.shift();
    });
    const client = new Client({ name: 'rerank-bench', version: '0.0.0' });
    await client.connect(transport);
    const system = new StdioServer(client, transport, args, stderr);
    // The server answers the handshake at once and loads the model in the background:
    // model_info waits for the load, so the measured calls never do.
    await client.callTool({ name: 'model_info', arguments: {} }).catch(() => undefined);
    return system;
  }

  async score(call: Call): Promise<number[]> {
    let result;
    try {
      result = await this.client.callTool({ name: 'rerank', arguments: { query: call.query, documents: call.documents, return_documents: false } });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nserver stderr:\n${this.stderr.join('')}`);
    }
    if (result.isError) throw new Error(`rerank failed: ${JSON.stringify(result.content)}`);
    const logits = new Array<number>(call.documents.length);
    for (const r of (result.structuredContent as { results: { index: number; logit: number }[] }).results) logits[r.index] = r.logit;
    return logits;
  }

  helperPids(): number[] {
    return this.transport.pid ? [this.transport.pid as number] : [];
  }

  detail(): Record<string, unknown> {
    return { command: ['node', ...this.args.map((a) => a.replace(process.cwd() + '/', ''))].join(' '), server_pid: this.transport.pid };
  }

  async close() {
    const pid = this.transport.pid as number | null;
    const serverPeakRssMb = pid ? procStatusMb(pid, 'VmHWM') : NaN;
    await this.client.close();
    return { serverPeakRssMb, clientPeakRssMb: procStatusMb('self', 'VmHWM') };
  }
}

// ---------------------------------------------------------------------------------------

async function timed(system: BenchSystem, call: Call): Promise<CallResult> {
  const start = performance.now();
  const logits = await system.score(call);
  const ms = performance.now() - start;
  return { id: call.id, ms, logits, otherCores: NaN, shareMs: ms };
}

/** A call's time, retried (up to 3 more times) while other processes disturb it. */
async function cleanTiming(system: BenchSystem, call: Call): Promise<number> {
  let ms = Infinity;
  for (let attempt = 0; attempt < 4; attempt++) {
    const load = new OtherLoad(['self', ...system.helperPids()]).begin();
    ms = Math.min(ms, (await timed(system, call)).ms);
    if (load.end().other < CLEAN_CORES) break;
  }
  return ms;
}

function send(message: WorkerMessage): void {
  process.send!(message);
}

let system: BenchSystem | undefined;
let init: InitMessage | undefined;

async function handle(message: DriverMessage): Promise<void> {
  if (message.type === 'init') {
    init = message;
    const rssBeforeLoadMb = procStatusMb('self', 'VmRSS');
    const start = performance.now();
    const loaders = {
      'raw-ort': RawOrt.load,
      'transformers.js': TransformersJs.load,
      engine: InProcessEngine.load,
      stdio: StdioServer.load,
      'stdio-concurrent': StdioServer.load,
    };
    system = await loaders[message.system](message);
    send({ type: 'ready', loadMs: performance.now() - start, rssBeforeLoadMb, detail: system.detail() });
    return;
  }
  if (!system || !init) throw new Error('worker not initialised');
  const current = system;
  switch (message.type) {
    case 'warmup':
      for (const call of message.calls) await current.score(call);
      send({ type: 'done' });
      return;
    case 'tune': {
      if (!(current instanceof RawOrt)) throw new Error('only raw-ort tunes its batching');
      // Open and warm every session a plan needs before anything is timed.
      for (const memPattern of new Set(message.plans.map((p) => p.memPattern))) {
        current.plan = message.plans.find((p) => p.memPattern === memPattern)!;
        await current.score(message.calls[0]);
      }
      // Each plan's cost: per call, the fastest of the passes (robust to a burst of outside
      // load), averaged over the calls. Plans take turns call by call, in an order that rotates,
      // so that drift hits them alike.
      const best = new Map<BatchPlan, number[]>(message.plans.map((p) => [p, message.calls.map(() => Infinity)]));
      let turn = 0;
      for (let pass = 0; pass < message.passes; pass++) {
        for (const [i, call] of message.calls.entries()) {
          const shift = turn++ % message.plans.length;
          for (const plan of [...message.plans.slice(shift), ...message.plans.slice(0, shift)]) {
            current.plan = plan;
            const times = best.get(plan)!;
            times[i] = Math.min(times[i], await cleanTiming(current, call));
          }
        }
      }
      const results: TuneResult[] = [...best].map(([plan, times]) => ({ plan, meanMs: times.reduce((a, b) => a + b, 0) / times.length, calls: times.length }));
      const winner = results.reduce((a, b) => (b.meanMs < a.meanMs ? b : a)).plan;
      current.plan = winner;
      send({ type: 'tuned', results, best: winner });
      return;
    }
    case 'run': {
      const results: CallResult[] = [];
      const pids: (number | 'self')[] = ['self', ...current.helperPids()];
      const whole = new OtherLoad(pids).begin();
      const start = performance.now();
      // Each call (each wave, when concurrent) is tagged with the load other processes put
      // on the machine meanwhile, so the report can tell clean measurements from disturbed ones.
      const size = init.system === 'stdio-concurrent' ? init.concurrency : 1;
      for (let i = 0; i < message.calls.length; i += size) {
        const load = new OtherLoad(pids).begin();
        const waveStart = performance.now();
        // One client connection, `size` calls in flight at once.
        const wave = await Promise.all(message.calls.slice(i, i + size).map((call) => timed(current, call)));
        const { other } = load.end();
        const waveMs = performance.now() - waveStart;
        results.push(...wave.map((r) => ({ ...r, otherCores: other, shareMs: waveMs / wave.length })));
      }
      const wallMs = performance.now() - start;
      const { other, ownMs } = whole.end();
      send({ type: 'result', calls: results, wallMs, cpuMs: ownMs, otherCores: other });
      return;
    }
    case 'cache': {
      const first: number[] = [];
      const repeated: number[] = [];
      for (const call of message.calls) {
        first.push((await timed(current, call)).ms);
        for (let i = 0; i < message.repeats; i++) repeated.push((await timed(current, call)).ms);
      }
      send({ type: 'cached', first, repeated });
      return;
    }
    case 'finish': {
      const extra = await current.close();
      send({ type: 'stats', peakRssMb: procStatusMb('self', 'VmHWM'), ...extra });
      process.disconnect?.();
      setTimeout(() => process.exit(0), 100).unref();
      return;
    }
  }
}

let queue = Promise.resolve();
process.on('message', (message: DriverMessage) => {
  queue = queue
    .then(() => handle(message))
    .catch((err: Error) => {
      send({ type: 'error', message: err.stack ?? String(err) });
      setTimeout(() => process.exit(1), 100);
    });
});
