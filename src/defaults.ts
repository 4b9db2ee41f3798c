/**
 * Defaults that the CLI's option table needs, kept in a module that imports nothing, so that the
 * stdio shim can parse its options without loading the engine, the Hub client or the feedback store.
 * test/daemon-shim.test.ts checks that they equal the engine's own DEFAULT_ENGINE_OPTIONS.
 */
export const DEFAULT_MODEL = 'cross-encoder/ms-marco-MiniLM-L6-v2';
/** An ONNX export of DEFAULT_MODEL, used when the repo itself has no ONNX file for the variant. */
export const DEFAULT_MODEL_MIRROR = 'Xenova/ms-marco-MiniLM-L-6-v2';

export const ENGINE_OPTION_DEFAULTS = { maxBatchTokens: 1024, batchWaitMs: 2, chunkOverlap: 64, maxCallTokens: 512_000 } as const;
