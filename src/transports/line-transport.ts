/**
 * MCP over newline-delimited JSON-RPC on a pair of streams (stdin/stdout). It replaces the SDK's
 * StdioServerTransport, which parses each line itself and drops what its schema rejects with no
 * answer: here each line is parsed once, checked (jsonrpc-check.ts), and every message is
 * either passed on to the server, answered with a JSON-RPC error, or logged in one line.
 *
 * JSON-RPC batch arrays, which MCP allowed only in 2025-03-26: under that revision each element
 * is handled as its own message (and answered on its own line); under every other revision a
 * batch is an Invalid Request, answered for each element that carries an id (or once with id
 * null), so no caller is left waiting.
 *
 * The input is a stream of whole lines, one per chunk (see stdin-line-guard.ts).
 */
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { log } from '../log.js';
import { InFlightIds, INVALID_REQUEST, checkMessage, duplicateReply, isRequest, isResponse, parseError } from './jsonrpc-check.js';

/** The only MCP revision whose clients may send JSON-RPC batches (2025-06-18 removed them). */
const BATCH_REVISION = '2025-03-26';

const isBlank = (line: Buffer) => line.every((b) => b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private readonly inFlight = new InFlightIds();
  /** The revision the server will answer `initialize` with, by the SDK's rule. */
  private protocolVersion: string | undefined;
  private started = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {}

  async start(): Promise<void> {
    if (this.started) throw new Error('LineTransport already started');
    this.started = true;
    this.input.on('data', this.onLine);
    this.input.on('error', this.onInputError);
  }

  private readonly onInputError = (err: Error) => this.onerror?.(err);

  private readonly onLine = (line: Buffer) => {
    if (isBlank(line)) return;
    let value: unknown;
    try {
      value = JSON.parse(line.toString('utf8').trimEnd());
    } catch (err) {
      const { reply, log: line } = parseError(err);
      log(line);
      this.write(reply);
      return;
    }
    if (Array.isArray(value)) this.batch(value);
    else this.receive(value);
  };

  private batch(messages: unknown[]): void {
    if (this.protocolVersion === BATCH_REVISION && messages.length > 0) {
      log(`a JSON-RPC batch of ${messages.length} message(s): handled one by one (protocol ${BATCH_REVISION})`);
      for (const message of messages) this.receive(message);
      return;
    }
    const version = this.protocolVersion ?? 'before initialize';
    const text = `Invalid Request: JSON-RPC batches are not part of MCP ${this.protocolVersion ?? LATEST_PROTOCOL_VERSION}; send one message per line`;
    // Only ids that can be echoed exactly; the rest share the one reply with id null.
    const ids = messages.flatMap((m) => (isRecord(m) && (typeof m.id === 'string' || Number.isSafeInteger(m.id)) ? [m.id as string | number] : []));
    log(`a JSON-RPC batch of ${messages.length} message(s) refused with -32600 (protocol ${version}): send one message per line`);
    for (const id of ids.length > 0 ? ids : [null]) this.write({ jsonrpc: '2.0', id, error: { code: INVALID_REQUEST, message: text } });
  }

  private receive(value: unknown): void {
    const checked = checkMessage(value);
    if (!checked.ok) {
      log(checked.log);
      if (checked.reply) this.write(checked.reply);
      return;
    }
    const message = checked.message;
    if (isRequest(message)) {
      if (this.inFlight.has(message.id)) {
        const refused = duplicateReply(message.id, message.method);
        log(refused.log);
        this.write(refused.reply);
        return;
      }
      this.inFlight.add(message.id);
      if (message.method === 'initialize') this.noteInitialize(message);
    }
    this.onmessage?.(message);
  }

  private noteInitialize(message: JSONRPCMessage): void {
    if (this.protocolVersion !== undefined) return;
    const requested = (message as { params?: { protocolVersion?: unknown } }).params?.protocolVersion;
    this.protocolVersion = typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
  }

  private write(message: unknown): Promise<void> {
    return new Promise((resolve) => {
      if (this.output.write(JSON.stringify(message) + '\n')) resolve();
      else this.output.once('drain', resolve);
    });
  }

  /**
   * The server has finished with a request (see watchRequests): its id is free again, even when
   * no answer was sent because the request was cancelled.
   */
  settled(id: string | number): void {
    this.inFlight.delete(id);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (isResponse(message)) this.inFlight.delete(message.id);
    await this.write(message);
  }

  async close(): Promise<void> {
    this.input.off('data', this.onLine);
    this.input.off('error', this.onInputError);
    if (this.input.listenerCount('data') === 0) this.input.pause();
    this.onclose?.();
  }
}
