/**
 * The tape's mechanics on a toy backend: gradients of small compositions against finite differences,
 * accumulation over several uses, zeros for a tensor the value does not depend on, nothing recorded
 * or kept outside valueAndGrads, every intermediate freed, and typed errors where no gradient exists.
 */
import { describe, expect, it } from 'vitest';
import type { Backend, Kernels, StorageHandle, TensorView } from '../src/index.js';
import { GradientError, memory, ops, tensor, tidy, valueAndGrads } from '../src/index.js';
import { createToyBackend } from './toy-backend.js';

const values = (t: TensorView) => t.storage as Float32Array;
const map = (x: TensorView, f: (v: number, i: number) => number): StorageHandle => values(x).map(f);

/** The toy backend with the elementwise kernels and a 2-D matmul, enough to build λ-like expressions. */
function trainingToyBackend(name: string): Backend {
  const toy = createToyBackend(name);
  const kernels: Partial<Kernels> = {
    ...toy.kernels,
    exp: (x) => map(x, Math.exp),
    mul: (a, b) => map(a, (v, i) => v * values(b)[i]),
    scale: (x, attrs) => map(x, (v) => attrs.alpha * v + attrs.beta),
    matmul: (a, b, attrs, out) => {
      const [m, n] = out.shape;
      const k = attrs.transposeA ? a.shape[0] : a.shape[1];
      const y = new Float32Array(m * n);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++)
          for (let p = 0; p < k; p++) {
            const av = values(a)[attrs.transposeA ? p * m + i : i * k + p];
            const bv = values(b)[attrs.transposeB ? j * k + p : p * n + j];
            y[i * n + j] += av * bv;
          }
      return y;
    },
    softmax: (x) => map(x, () => 0),
  };
  return { ...toy, kernels };
}

describe('valueAndGrads', () => {
  const backend = trainingToyBackend('toy-autograd');
  const of = (data: number[], shape = [data.length]) => tensor(data, shape, { backend });

  it('differentiates exp(a·b) − 2·a through matmul, exp, mul, scale and add', async () => {
    const a = of([0.3, -0.2, 0.5], [1, 3]);
    const b = of([0.1, 0.4, -0.3], [1, 3]);
    const f = () => {
      const dot = ops.matmul(a, b, { transposeB: true }).reshape([1]);
      return ops.add(ops.exp(dot), ops.scale(ops.matmul(a, of([1, 1, 1], [3, 1])).reshape([1]), -2, 0));
    };
    const { value, grads } = valueAndGrads(
      f,
      new Map([
        ['a', a],
        ['b', b],
      ]),
    );
    const dot = 0.3 * 0.1 - 0.2 * 0.4 - 0.5 * 0.3;
    expect((await value.data())[0]).toBeCloseTo(Math.exp(dot) - 2 * 0.6, 6);
    const da = await grads.get('a')!.array();
    const db = await grads.get('b')!.array();
    for (const [i, bv] of [0.1, 0.4, -0.3].entries()) expect(da[i]).toBeCloseTo(Math.exp(dot) * bv - 2, 6);
    for (const [i, av] of [0.3, -0.2, 0.5].entries()) expect(db[i]).toBeCloseTo(Math.exp(dot) * av, 6);
    for (const t of [value, ...grads.values(), a, b]) t.dispose();
  });

  it('adds the gradients of a tensor used several times, and gives zeros to an unused one', async () => {
    const x = of([1.5, -2]);
    const unused = of([7]);
    const { value, grads } = valueAndGrads(
      () => ops.add(ops.mul(x, x), ops.add(x, x)),
      new Map([
        ['x', x],
        ['unused', unused],
      ]),
    );
    // d(x² + 2x)/dx = 2x + 2
    expect(await grads.get('x')!.array()).toEqual([5, -2]);
    expect(await grads.get('unused')!.array()).toEqual([0]);
    for (const t of [value, ...grads.values(), x, unused]) t.dispose();
  });

  it('frees every intermediate and everything it saved: only the value and the gradients stay', () => {
    const x = of([0.5, 0.25]);
    const before = memory(backend.name).liveStorages;
    const { value, grads } = valueAndGrads(() => tidy(() => ops.exp(ops.mul(ops.exp(x), x))), new Map([['x', x]]));
    expect(memory(backend.name).liveStorages).toBe(before + 2);
    value.dispose();
    grads.get('x')!.dispose();
    expect(memory(backend.name).liveStorages).toBe(before);
    x.dispose();
  });

  it('records nothing outside its scope: ops then keep no saved tensors', () => {
    const x = of([1, 2]);
    const before = memory(backend.name).liveStorages;
    const y = ops.exp(ops.mul(x, x));
    // mul's output is still alive (not freed by anybody), exp's output too: nothing else.
    expect(memory(backend.name).liveStorages).toBe(before + 2);
    y.dispose();
    x.dispose();
  });

  it('refuses what has no gradient, with a typed error, and leaves nothing behind', () => {
    const x = of([1, 2]);
    const before = memory(backend.name).liveStorages;
    expect(() => valueAndGrads(() => ops.softmax(ops.exp(x)), new Map([['x', x]]))).toThrow(GradientError);
    expect(() => valueAndGrads(() => ops.softmax(ops.exp(x)), new Map([['x', x]]))).toThrow(/softmax: has no gradient/);
    expect(() => valueAndGrads(() => valueAndGrads(() => x, new Map([['x', x]])).value, new Map([['x', x]]))).toThrow(
      /cannot be nested/,
    );
    expect(memory(backend.name).liveStorages).toBe(before);
    x.dispose();
  });

  it('a watched tensor returned as the value gets the seed of ones', async () => {
    const x = of([3, 4]);
    const { value, grads } = valueAndGrads(() => x, new Map([['x', x]]));
    expect(await grads.get('x')!.array()).toEqual([1, 1]);
    value.dispose();
    grads.get('x')!.dispose();
    x.dispose();
  });
});
