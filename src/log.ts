/** Every log line goes to stderr: in stdio mode stdout carries only JSON-RPC. */
export function log(message: string): void {
  process.stderr.write(`[rerank-mcp] ${message}\n`);
}
