/** A tokenizer worker: parses the model's tokenizer files once, then runs encode and hash jobs (tokenizer-pool.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { loadTokenizerFiles, runEncodeJob, textHash } from '../tokenizer/tokenizer-service.js';

const { tokenizerPath, tokenizerConfigPath } = workerData as { tokenizerPath: string; tokenizerConfigPath: string | null };
const port = parentPort!;
try {
  const { tokenizer, description } = loadTokenizerFiles(tokenizerPath, tokenizerConfigPath);
  port.postMessage({ type: 'ready', description });
  port.on('message', (msg: { id: number; kind: 'encode' | 'hash'; payload: unknown }) => {
    try {
      const result = msg.kind === 'encode' ? runEncodeJob(tokenizer, msg.payload as Parameters<typeof runEncodeJob>[1]) : (msg.payload as string[]).map(textHash);
      port.postMessage({ id: msg.id, ok: true, result });
    } catch (err) {
      port.postMessage({ id: msg.id, ok: false, error: (err as Error).message });
    }
  });
} catch (err) {
  port.postMessage({ type: 'failed', error: (err as Error).message.replace(/\s*\n\s*/g, ' ') });
}
