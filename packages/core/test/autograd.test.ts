/**
 * The tape's mechanics on a toy backend: gradients of small compositions against their derivatives
 * worked out by hand, accumulation over several uses, zeros for a tensor the value does not depend on,
 * a given dValue, nothing recorded or kept outside valueAndGrads, saved tensors freed as soon as their
 * rule has run, every intermediate freed, and typed errors where no gradient exists. The rules
 * themselves are checked op by op on every backend by the conformance suite (its opGradient cases).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Backend, Kernels, StorageHandle, TensorView } from '../src/index.js';
import { GRADIENTS, GradientError, memory, ops, tensor, tidy, valueAndGrads } from '../src/index.js';
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
    // Rows of logits against their targets, summed and scaled, with dLogits = scale·(softmax − onehot).
    crossEntropy: (logits, targets, attrs) => {
      const [n, v] = logits.shape;
      const dLogits = new Float32Array(n * v);
      let loss = 0;
      for (let r = 0; r < n; r++) {
        const row = values(logits).subarray(r * v, (r + 1) * v);
        const target = (targets.storage as Int32Array)[r];
        const logSumExp = Math.log(row.reduce((sum, l) => sum + Math.exp(l), 0));
        loss += logSumExp - row[target];
        row.forEach((l, j) => {
          dLogits[r * v + j] = attrs.scale * (Math.exp(l - logSumExp) - (j === target ? 1 : 0));
        });
      }
      return { loss: Float32Array.of(attrs.scale * loss), dLogits };
    },
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
      const dot = ops.reshape(ops.matmul(a, b, { transposeB: true }), [1]);
      return ops.add(ops.exp(dot), ops.scale(ops.reshape(ops.matmul(a, of([1, 1, 1], [3, 1])), [1]), -2, 0));
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

  it('an op without a rule refuses a recorded input: no silent zero gradient', async () => {
    const x = of([0.5, -1], [1, 2]);
    const t = tensor([0], [1], { backend, dtype: 'int32' });
    const before = memory(backend.name).liveStorages;
    const watched = new Map([['x', x]]);
    // crossEntropyWithGradient returns its own gradient and records nothing: it must refuse, by name.
    const refused = () => valueAndGrads(() => ops.crossEntropyWithGradient(ops.exp(x), t).loss, watched);
    expect(refused).toThrow(GradientError);
    expect(refused).toThrow(/^crossEntropyWithGradient: has no gradient \(it returns its own gradient/);
    expect(memory(backend.name).liveStorages).toBe(before);
    // The same loss through crossEntropy: dL/dx = (softmax(eˣ) − onehot) ⊙ eˣ, not zero.
    const { value, grads } = valueAndGrads(() => ops.crossEntropy(ops.exp(x), t), watched);
    const logits = [Math.exp(0.5), Math.exp(-1)];
    const total = Math.exp(logits[0]) + Math.exp(logits[1]);
    const expected = logits.map((l, j) => (Math.exp(l) / total - (j === 0 ? 1 : 0)) * l);
    const dx = await grads.get('x')!.array();
    expected.forEach((e, j) => {
      expect(dx[j]).toBeCloseTo(e, 6);
    });
    for (const g of [value, ...grads.values(), x, t]) g.dispose();
  });

  it('refuses to differentiate an op with respect to its constants (rotary tables, ids, targets)', () => {
    const x = of([1, 2, 3, 4], [1, 1, 1, 4]);
    const cos = of([1, 1], [1, 2]);
    const sin = of([0, 0], [1, 2]);
    const rotate = () => ops.rotary(x, cos, sin, { layout: 'half' });
    expect(() => valueAndGrads(rotate, new Map([['cos', cos]]))).toThrow(
      "rotary: its input 'cos' has no gradient (a constant of the op); do not watch it",
    );
    for (const t of [x, cos, sin]) t.dispose();
  });

  it('has a row in the gradient table for every op, and no op reaches a kernel but through the run path', () => {
    // linear is matmul and reshape; every other op of ops/ runs through ops/run.ts under its own name.
    const ops_ = Object.keys(ops).filter((name) => name !== 'linear');
    expect(Object.keys(GRADIENTS).sort()).toEqual(ops_.sort());
    const folder = new URL('../src/ops/', import.meta.url);
    for (const file of readdirSync(folder).filter((f) => f !== 'run.ts' && f !== 'dispatch.ts')) {
      expect(readFileSync(new URL(file, folder), 'utf8'), file).not.toMatch(/kernelFor|\.kernels\b/);
    }
  });

  it('frees what a node saved as soon as its rule has run', async () => {
    // A chain of exps saves each output; the rules run from the last exp back, each calling mul once.
    // Were the saved outputs held to the end, the live storages at each mul would stay at 7.
    const live: number[] = [];
    const counting: Backend = {
      ...backend,
      name: 'toy-autograd-release',
      kernels: {
        ...backend.kernels,
        mul: (a, b, attrs, out) => {
          live.push(memory('toy-autograd-release').liveStorages);
          return backend.kernels.mul!(a, b, attrs, out);
        },
      },
    };
    const x = tensor([0.1, 0.2], [2], { backend: counting });
    const { value, grads } = valueAndGrads(
      () => {
        let y = x;
        for (let i = 0; i < 5; i++) y = ops.exp(y);
        return y;
      },
      new Map([['x', x]]),
    );
    // Live at each rule: x, the outputs still saved, the value, and dy. The last exp's output is the
    // value itself (it stays); from then on each rule frees one saved output before the next runs.
    expect(live).toEqual([7, 7, 6, 5, 4]);
    for (const t of [value, ...grads.values(), x]) t.dispose();
    expect(memory('toy-autograd-release').liveStorages).toBe(0);
  });

  it('starts from a given dValue: the gradient of Σ dValue ⊙ value', async () => {
    const x = of([0.5, 2]);
    const dValue = of([3, -1]);
    const { value, grads } = valueAndGrads(() => ops.exp(x), new Map([['x', x]]), { dValue });
    const dx = await grads.get('x')!.array();
    expect(dx[0]).toBeCloseTo(3 * Math.exp(0.5), 5);
    expect(dx[1]).toBeCloseTo(-Math.exp(2), 5);
    expect(() => valueAndGrads(() => ops.exp(x), new Map([['x', x]]), { dValue: of([1]) })).toThrow(
      /valueAndGrads dValue: expected shape \[2\]/,
    );
    for (const t of [value, ...grads.values(), x, dValue]) t.dispose();
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
