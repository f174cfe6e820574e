/**
 * The structural checks every export passes before it is written, each shown to catch the mistake it
 * is for on a deliberately broken graph.
 */
import { checkGraph, decoderGraph, OnnxGraph, OPSETS } from '@diff-transformer/onnx';
import { describe, expect, it } from 'vitest';
import { VARIANTS, variant } from './models.js';

/** A tiny valid graph: y = x·W + b. */
function tiny(): OnnxGraph {
  const g = new OnnxGraph('tiny');
  const x = g.input('x', 'float32', ['batch', 2]);
  const w = g.initializer('w', 'float32', [2, 2], new Uint8Array(16));
  const product = g.node('MatMul', [x, w], {}, { name: 'product' });
  g.node('Add', [product, g.float32([1, 2])], {}, { outputs: ['y'] });
  g.output('y', 'float32', ['batch', 2]);
  return g;
}

describe('checkGraph', () => {
  it('passes the graph of every variant, float32 and float16', () => {
    for (const name of Object.keys(VARIANTS)) {
      const { config, parameters } = variant(name);
      for (const dtype of ['float32', 'float16'] as const) {
        expect(checkGraph(decoderGraph(config, parameters, { dtype }).graph, OPSETS), `${name} ${dtype}`).toEqual([]);
      }
    }
    expect(checkGraph(tiny(), OPSETS)).toEqual([]);
  });

  it('names a value read before it is made, or never made', () => {
    const g = tiny();
    (g.nodes as unknown as unknown[]).reverse();
    expect(checkGraph(g, OPSETS).join('\n')).toMatch(/reads 'product', not defined before it/);
    const h = tiny();
    h.output('nowhere', 'float32', [1]);
    expect(checkGraph(h, OPSETS).join('\n')).toMatch(/graph output 'nowhere' is not made by any node/);
  });

  it('names a custom domain, an op outside the list, and an opset too old or too new for an op', () => {
    const g = tiny();
    g.node('MatMulNBits', ['x'], {}, { domain: 'com.microsoft' });
    const problems = checkGraph(g, OPSETS).join('\n');
    expect(problems).toMatch(/custom domain 'com.microsoft'/);
    expect(problems).toMatch(/'MatMulNBits' is not an op this exporter may write/);
    expect(checkGraph(tiny(), [{ domain: '', version: 13 }]).join('\n')).toMatch(
      /Add as written needs ai.onnx opset 14/,
    );
    const split = new OnnxGraph('split');
    const x = split.input('x', 'float32', [4]);
    const [a, b] = split.node('Split', [x, split.int64([2, 2])], { axis: 0 }, { outputs: 2 });
    split.output(a, 'float32', [2]);
    split.output(b, 'float32', [2]);
    expect(checkGraph(split, OPSETS)).toEqual([]);
    expect(checkGraph(split, [{ domain: '', version: 18 }]).join('\n')).toMatch(
      /Split as written needs ai.onnx opset 13/,
    );
  });

  it('names an initializer whose bytes do not fit its shape, and what is never used', () => {
    const g = tiny();
    g.initializer('short', 'float16', [3], new Uint8Array(4));
    const problems = checkGraph(g, OPSETS).join('\n');
    expect(problems).toMatch(/'short' \[3\] float16 holds 4 bytes, expected 6/);
    expect(problems).toMatch(/'short' is defined but never used/);
    const h = tiny();
    h.node('Sqrt', ['x']);
    expect(checkGraph(h, OPSETS).join('\n')).toMatch(/\(Sqrt\) computes nothing that is used/);
  });
});
