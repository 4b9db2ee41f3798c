/**
 * Messages between the benchmark driver (scripts/bench.ts) and its workers
 * (scripts/bench/worker.ts, one child process per system and variant).
 */

/** A call counts as clean when other processes used less than this many cores during it. */
export const CLEAN_CORES = 0.2;

export type SystemName = 'raw-ort' | 'transformers.js' | 'engine' | 'stdio' | 'stdio-concurrent';
export type Variant = 'fp32' | 'int8';

/** One rerank call of the workload: a query and its candidate documents. */
export interface Call {
  /** Position in the workload; warm-up and probe calls use negative ids. */
  id: number;
  query: string;
  documents: string[];
}

/** How the raw ceiling cuts a call's length-sorted pairs into batches. */
export interface BatchPlan {
  label: string;
  maxPairs: number;
  maxTokens: number;
  /** ONNX Runtime's enableMemPattern session option. */
  memPattern: boolean;
}

export interface InitMessage {
  type: 'init';
  system: SystemName;
  variant: Variant;
  modelDir: string;
  threads: number;
  /** Concurrent calls per wave (stdio-concurrent only). */
  concurrency: number;
  /** Documents per batch of the transformers.js peer. */
  peerBatchSize: number;
  /** The raw ceiling's batching, found by an earlier tuning worker. */
  plan?: BatchPlan;
}

export type DriverMessage =
  | InitMessage
  | { type: 'warmup'; calls: Call[] }
  | { type: 'tune'; calls: Call[]; plans: BatchPlan[]; passes: number }
  | { type: 'run'; calls: Call[] }
  | { type: 'cache'; calls: Call[]; repeats: number }
  | { type: 'finish' };

export interface CallResult {
  id: number;
  ms: number;
  /** One logit per document, in input order. */
  logits: number[];
  /** Cores that other processes kept busy during this call (during its wave, when concurrent). */
  otherCores: number;
  /** This call's share of the wall time: ms, or its wave's wall time / calls in the wave. */
  shareMs: number;
}

export interface TuneResult {
  plan: BatchPlan;
  /** Milliseconds per call: each call's fastest pass, averaged over the calls. */
  meanMs: number;
  calls: number;
}

export type WorkerMessage =
  | { type: 'ready'; loadMs: number; rssBeforeLoadMb: number; detail: Record<string, unknown> }
  | { type: 'done' }
  | { type: 'tuned'; results: TuneResult[]; best: BatchPlan }
  /** cpuMs: CPU time the system used meanwhile (worker, plus the server process for stdio). */
  | { type: 'result'; calls: CallResult[]; wallMs: number; cpuMs: number; otherCores: number }
  | { type: 'cached'; first: number[]; repeated: number[] }
  | { type: 'stats'; peakRssMb: number; serverPeakRssMb?: number; clientPeakRssMb?: number }
  | { type: 'error'; message: string };
