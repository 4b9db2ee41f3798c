/**
 * Writes tiny ONNX graphs for start-up error tests: a model whose inputs or outputs are
 * not a cross-encoder's. Hand-encoded protobuf, so no Python or onnx package is needed.
 */
import { writeFileSync } from 'node:fs';

const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const key = (field: number, wire: number) => varint(field * 8 + wire);
const int = (field: number, n: number) => [...key(field, 0), ...varint(n)];
const bytes = (field: number, payload: number[]) => [...key(field, 2), ...varint(payload.length), ...payload];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);

const FLOAT = 1;
const INT64 = 7;

function valueInfo(name: string, elemType: number): number[] {
  const dims = [bytes(1, str(2, 'batch')), bytes(1, str(2, 'sequence'))].flat();
  const tensor = [...int(1, elemType), ...bytes(2, dims)];
  return [...str(1, name), ...bytes(2, bytes(1, tensor))];
}

interface Node {
  op: string;
  inputs: string[];
  output: string;
  castTo?: number;
}

function node(n: Node): number[] {
  const attrs = n.castTo === undefined ? [] : bytes(5, [...str(1, 'to'), ...int(3, n.castTo), ...int(20, 2)]);
  return [...n.inputs.flatMap((i) => str(1, i)), ...str(2, n.output), ...str(4, n.op), ...attrs];
}

export function writeOnnxGraph(path: string, graph: { inputs: string[]; outputs: { name: string; elemType: 'float' | 'int64' }[]; nodes: Node[] }): void {
  const body = [
    ...graph.nodes.flatMap((n) => bytes(1, node(n))),
    ...str(2, 'test'),
    ...graph.inputs.flatMap((i) => bytes(11, valueInfo(i, INT64))),
    ...graph.outputs.flatMap((o) => bytes(12, valueInfo(o.name, o.elemType === 'float' ? FLOAT : INT64))),
  ];
  const model = [...int(1, 8), ...bytes(8, int(2, 13)), ...bytes(7, body)];
  writeFileSync(path, Buffer.from(model));
}

export const CAST_TO_FLOAT = FLOAT;
