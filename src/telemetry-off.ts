/**
 * ONNX Runtime 1.30 on Linux writes a device id and a usage-event queue under ~/.cache and
 * uploads them when it can. A local reranker keeps quiet: this module is imported before
 * onnxruntime-node loads, and a user can still opt in with ORT_DISABLE_TELEMETRY=0.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';
