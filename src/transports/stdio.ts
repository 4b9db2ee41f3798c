import type { Readable, Writable } from 'node:stream';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { createRerankServer, type ServerContext } from '../mcp/server.js';
import { log } from '../log.js';
import { guardLines } from './stdin-line-guard.js';

export interface StdioEvents {
  /** The client has completed the MCP handshake (`notifications/initialized`). */
  onInitialized: () => void;
  /** The client closed stdin. */
  onEnd: () => void;
}

/** The only MCP revision whose clients may send JSON-RPC batches (2025-06-18 removed them). */
const BATCH_REVISION = '2025-03-26';
const OPEN_BRACKET = 0x5b;

/**
 * Serves MCP over stdin/stdout, or over another pair of streams carrying the same newline-delimited
 * JSON-RPC (the shared daemon passes each shim's socket).
 */
export async function serveStdio(
  ctx: ServerContext,
  maxLineBytes: number,
  { onInitialized, onEnd }: StdioEvents,
  { input: source, output }: { input: Readable; output: Writable } = { input: process.stdin, output: process.stdout },
): Promise<McpServer> {
  const server = createRerankServer(ctx);
  server.server.oninitialized = onInitialized;
  const reply = (message: unknown) => output.write(JSON.stringify(message) + '\n');
  const batches = new BatchLines(reply);
  const input = guardLines(
    source,
    maxLineBytes,
    (line) => {
      const limit = `${Math.round(maxLineBytes / 1024 / 1024)} MiB`;
      const message = `request of ${(line.bytes / 1024 / 1024).toFixed(1)} MiB refused: messages are limited to ${limit} (--max-body-mb)`;
      log(message);
      if (line.id === undefined) return;
      reply(
        line.isToolCall
          ? { jsonrpc: '2.0', id: line.id, result: { content: [{ type: 'text', text: message }], isError: true } }
          : { jsonrpc: '2.0', id: line.id, error: { code: -32600, message } },
      );
    },
    (line) => batches.rewrite(line),
  );
  // The guard already bounds each line; the SDK's own bound must not be the one that trips.
  const transport = new StdioServerTransport(input, output, { maxBufferSize: maxLineBytes * 2 });
  server.server.onerror = (err) => log(`protocol error: ${err.message}`);
  // A client that goes away closes our stdin; nothing else will end the process.
  input.on('end', () => {
    log('stdin closed');
    onEnd();
  });
  await server.connect(transport);
  log('serving MCP over stdio');
  return server;
}

/**
 * JSON-RPC batch arrays, which the SDK's stdio transport drops with a schema dump on stderr
 * while the client waits forever. Under 2025-03-26, which obliged servers to accept batches,
 * each element is passed on as its own message (and answered on its own line); under every
 * other revision a batch is an Invalid Request, answered for each element that carries an id
 * (or once with id null), so no caller is left waiting.
 */
class BatchLines {
  /** The revision the server will answer `initialize` with, by the SDK's rule. */
  private protocolVersion: string | undefined;

  constructor(private readonly reply: (message: unknown) => void) {}

  rewrite(line: Buffer): Buffer[] {
    const first = line.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0a);
    if (first !== OPEN_BRACKET) {
      this.noteInitialize(line);
      return [line];
    }
    let batch: unknown;
    try {
      batch = JSON.parse(line.toString('utf8'));
    } catch {
      return [line]; // not JSON: the SDK reports it as such
    }
    if (!Array.isArray(batch)) return [line];
    if (this.protocolVersion === BATCH_REVISION && batch.length > 0) {
      log(`a JSON-RPC batch of ${batch.length} message(s): handled one by one (protocol ${BATCH_REVISION})`);
      return batch.map((message) => Buffer.from(JSON.stringify(message) + '\n'));
    }
    const version = this.protocolVersion ?? 'before initialize';
    const message = `Invalid Request: JSON-RPC batches are not part of MCP ${this.protocolVersion ?? LATEST_PROTOCOL_VERSION}; send one message per line`;
    const ids = batch.flatMap((m) => (isRecord(m) && (typeof m.id === 'string' || typeof m.id === 'number') ? [m.id] : []));
    log(`a JSON-RPC batch of ${batch.length} message(s) refused with -32600 (protocol ${version}): send one message per line`);
    for (const id of ids.length > 0 ? ids : [null]) this.reply({ jsonrpc: '2.0', id, error: { code: -32600, message } });
    return [];
  }

  private noteInitialize(line: Buffer): void {
    if (this.protocolVersion !== undefined || !/"method"\s*:\s*"initialize"/.test(line.subarray(0, 4096).toString('utf8'))) return;
    try {
      const requested = (JSON.parse(line.toString('utf8')) as { params?: { protocolVersion?: unknown } }).params?.protocolVersion;
      this.protocolVersion = typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
    } catch {
      // malformed: the SDK answers it
    }
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
