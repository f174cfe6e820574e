/**
 * Structural checks of a graph before it is written, the ones ONNX's checker makes that matter here
 * (onnx.checker.check_model runs in CI too, where Python's onnx is installed): names are defined once,
 * every node reads only values defined before it (topological order), every graph output is made,
 * initializers hold as many bytes as their shape says, nothing defined goes unused, and every op is a
 * standard one that the declared opset has (no custom op is needed to run the model).
 */
import { ELEMENT_BYTES, type OnnxGraph, type OpsetImport } from './graph.js';

/**
 * The ai.onnx ops the exporter writes, each with the opset version its signature here comes from;
 * a graph declaring an older opset than one of them is refused.
 */
export const STANDARD_OPS: Readonly<Record<string, number>> = {
  Add: 14,
  And: 7,
  Cast: 13,
  Concat: 13,
  Div: 14,
  Exp: 13,
  Gather: 13,
  LessOrEqual: 16,
  MatMul: 13,
  Mul: 14,
  Pow: 15,
  Range: 11,
  ReduceMean: 13,
  ReduceSum: 13,
  Reshape: 14,
  Shape: 15,
  Sigmoid: 13,
  Softmax: 13,
  Split: 13,
  Sqrt: 13,
  Squeeze: 13,
  Sub: 14,
  Transpose: 13,
  Unsqueeze: 13,
  Where: 16,
};

/** Ops whose signature changed after the version above (an opset past it reads their inputs differently). */
const CHANGED_AFTER: Readonly<Record<string, number>> = { ReduceMean: 18, Split: 18 };

/** Every problem found, one line each (empty: the graph passes). */
export function checkGraph(graph: OnnxGraph, opsets: readonly OpsetImport[]): string[] {
  const problems: string[] = [];
  const defined = new Set<string>();
  const define = (name: string, what: string) => {
    if (!name) problems.push(`${what} has an empty name`);
    else if (defined.has(name)) problems.push(`'${name}' (${what}) is defined twice`);
    defined.add(name);
  };
  for (const v of graph.inputs) define(v.name, 'graph input');
  for (const t of graph.initializers) {
    define(t.name, 'initializer');
    const elements = t.dims.reduce((n, d) => n * d, 1);
    if (t.dims.some((d) => !Number.isInteger(d) || d < 0))
      problems.push(`initializer '${t.name}' has dims [${t.dims}]`);
    else if (t.data.byteLength !== elements * ELEMENT_BYTES[t.type]) {
      problems.push(
        `initializer '${t.name}' [${t.dims}] ${t.type} holds ${t.data.byteLength} bytes, expected ${elements * ELEMENT_BYTES[t.type]}`,
      );
    }
  }
  const used = new Set<string>();
  const standard = opsets.find((o) => o.domain === '')?.version;
  if (standard === undefined) problems.push('no ai.onnx opset is imported');
  for (const node of graph.nodes) {
    for (const input of node.inputs) {
      if (input === '') continue; // an omitted optional input
      if (!defined.has(input))
        problems.push(`node '${node.name}' (${node.op}) reads '${input}', not defined before it`);
      used.add(input);
    }
    if (node.domain !== '') problems.push(`node '${node.name}' uses the custom domain '${node.domain}'`);
    const since = STANDARD_OPS[node.op];
    if (since === undefined) problems.push(`node '${node.name}': '${node.op}' is not an op this exporter may write`);
    else if (standard !== undefined && (standard < since || standard >= (CHANGED_AFTER[node.op] ?? Infinity))) {
      problems.push(
        `node '${node.name}': ${node.op} as written needs ai.onnx opset ${since}, the graph imports ${standard}`,
      );
    }
    for (const output of node.outputs) define(output, `output of node '${node.name}'`);
  }
  for (const v of graph.outputs) {
    if (!defined.has(v.name)) problems.push(`graph output '${v.name}' is not made by any node`);
    used.add(v.name);
  }
  for (const v of [...graph.inputs, ...graph.initializers]) {
    if (!used.has(v.name)) problems.push(`'${v.name}' is defined but never used`);
  }
  for (const node of graph.nodes) {
    if (node.outputs.every((o) => !used.has(o)))
      problems.push(`node '${node.name}' (${node.op}) computes nothing that is used`);
  }
  return problems;
}
