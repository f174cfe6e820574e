/**
 * Every kernel except attention against the conformance suite's float64 reference, through
 * core's validated ops, over the shapes that exercise the loop tails and tiles (odd sizes, T = 1, b
 * shared as a weight, transposed layouts, partial rotary).
 */
import { ops, tensor, type Tensor } from '@diff-transformer/core';
import { createCpuBackend, type CpuBackend } from '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reference } from '@diff-transformer/conformance';
import { ENGINES, expectClose, product, randomArray } from './helpers.js';

const read = async (t: Tensor): Promise<Float32Array> => (await t.data()) as Float32Array;

describe.each(ENGINES)('%s engine', (engine) => {
  let backend: CpuBackend;
  beforeAll(async () => {
    backend = await createCpuBackend({ engine });
  });
  afterAll(() => backend.dispose());
  const upload = (values: ArrayLike<number> | Int32Array, shape: readonly number[]): Tensor =>
    tensor(values, shape, { backend });

  describe('matmul', () => {
    const cases: Array<{ a: number[]; b: number[]; transposeA: boolean; transposeB: boolean }> = [];
    for (const [m, k, n] of [
      [1, 1, 1],
      [1, 33, 7],
      [7, 33, 129],
      [33, 7, 5],
      [3, 130, 67],
      [2, 1100, 9],
      // Several column tiles: of the dot form (K = 2000 gives 32-column tiles) and of the axpy form (256).
      [3, 2000, 45],
      [5, 300, 300],
      // WebAssembly: several row and column blocks of 64 × 256 with edge tiles, several K slices of 256.
      [70, 300, 263],
    ]) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          const a = transposeA ? [k, m] : [m, k];
          const b = transposeB ? [n, k] : [k, n];
          cases.push({ a, b, transposeA, transposeB });
          cases.push({ a: [2, 3, ...a], b: [2, 3, ...b], transposeA, transposeB });
          cases.push({ a: [3, ...a], b, transposeA, transposeB });
        }
      }
    }

    it.each(cases)(
      'a $a · b $b (transposeA $transposeA, transposeB $transposeB)',
      async ({ a, b, transposeA, transposeB }) => {
        const x = randomArray(product(a), 1);
        const y = randomArray(product(b), 2);
        const z = ops.matmul(upload(x, a), upload(y, b), { transposeA, transposeB });
        // The WebAssembly kernels accumulate in float32, as BLAS sgemm does: rounding grows with K.
        const k = transposeA ? a[a.length - 2] : a[a.length - 1];
        const expected = reference.matmul(reference.refTensor(x, a), reference.refTensor(y, b), {
          transposeA,
          transposeB,
        });
        expectClose(await read(z), expected.data, 1e-5 + 2e-7 * k, 1e-5);
      },
    );

    it('handles an empty inner dimension as a zero product', async () => {
      const z = ops.matmul(upload([], [3, 0]), upload([], [0, 4]));
      expect(z.shape).toEqual([3, 4]);
      expect(Array.from(await read(z))).toEqual(new Array(12).fill(0));
    });

    it('linear on a rank-3 input uses the weight layout [out, in]', async () => {
      const x = randomArray(2 * 5 * 24, 3);
      const w = randomArray(40 * 24, 4);
      const y = ops.linear(upload(x, [2, 5, 24]), upload(w, [40, 24]));
      expect(y.shape).toEqual([2, 5, 40]);
      expectClose(
        await read(y),
        reference.linear(reference.refTensor(x, [2, 5, 24]), reference.refTensor(w, [40, 24])).data,
      );
    });
  });

  describe('embedding', () => {
    it('gathers rows, repeated ids included', async () => {
      const table = randomArray(11 * 6, 5);
      const ids = new Int32Array([3, 0, 10, 3, 7, 7]);
      const y = ops.embedding(upload(table, [11, 6]), upload(ids, [2, 3]));
      expect(y.shape).toEqual([2, 3, 6]);
      const expected = Array.from(ids).flatMap((id) => Array.from(table.subarray(id * 6, id * 6 + 6)));
      expect(Array.from(await read(y))).toEqual(expected);
    });
  });

  describe('rmsNorm', () => {
    for (const width of [1, 7, 64, 129]) {
      for (const withWeight of [true, false]) {
        it(`width ${width}, ${withWeight ? 'with' : 'without'} weight`, async () => {
          const rows = 5;
          const x = randomArray(rows * width, 6, 3);
          const w = randomArray(width, 7);
          const eps = 1e-5;
          const y = ops.rmsNorm(upload(x, [rows, width]), withWeight ? upload(w, [width]) : null, eps);
          const weight = withWeight ? reference.refTensor(w, [width]) : null;
          const expected = reference.rmsNorm(reference.refTensor(x, [rows, width]), weight, { eps });
          expectClose(await read(y), expected.data);
        });
      }
    }
  });

  describe('rotary', () => {
    const cases: Array<{ shape: number[]; half: number; layout: 'interleaved' | 'half'; positionOffset: number }> = [];
    for (const layout of ['interleaved', 'half'] as const) {
      cases.push({ shape: [1, 1, 1, 2], half: 1, layout, positionOffset: 0 });
      cases.push({ shape: [2, 7, 3, 16], half: 8, layout, positionOffset: 0 });
      cases.push({ shape: [2, 5, 2, 64], half: 32, layout, positionOffset: 9 });
      // Partial rotary: only the first r = 2·half dimensions turn.
      cases.push({ shape: [1, 4, 2, 32], half: 8, layout, positionOffset: 3 });
      cases.push({ shape: [1, 3, 1, 10], half: 3, layout, positionOffset: 1 });
    }

    it.each(cases)(
      'x $shape, r/2 = $half, $layout, offset $positionOffset',
      async ({ shape, half, layout, positionOffset }) => {
        const positions = positionOffset + shape[1] + 2;
        const angles = Array.from({ length: positions * half }, (_, i) => 0.37 * i);
        const cos = Float32Array.from(angles, Math.cos);
        const sin = Float32Array.from(angles, Math.sin);
        const x = randomArray(product(shape), 8);
        const y = ops.rotary(upload(x, shape), upload(cos, [positions, half]), upload(sin, [positions, half]), {
          layout,
          positionOffset,
        });
        const got = await read(y);
        const table = (values: Float32Array) => reference.refTensor(values, [positions, half]);
        const expected = reference.rotary(reference.refTensor(x, shape), table(cos), table(sin), {
          layout,
          positionOffset,
        });
        expectClose(got, expected.data);
        // The unrotated tail is copied exactly.
        const d = shape[3];
        for (let i = 2 * half; i < d; i++) expect(got[i]).toBe(x[i]);
      },
    );
  });

  describe('elementwise', () => {
    const x = randomArray(33, 9, 4);
    const z = randomArray(33, 10, 4);

    it('add', async () => {
      expectClose(
        await read(ops.add(upload(x, [3, 11]), upload(z, [3, 11]))),
        Array.from(x, (v, i) => v + z[i]),
        0,
        1e-7,
      );
    });

    it('swiglu = silu(gate) · up, finite for large negative gates', async () => {
      const gate = Float32Array.from([...x, -1000, 1000, 0]);
      const up = Float32Array.from([...z, 2, 2, 2]);
      const got = await read(ops.swiglu(upload(gate, [36]), upload(up, [36])));
      expectClose(
        got,
        Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]),
        1e-6,
        1e-6,
      );
      expect(Math.abs(got[33])).toBe(0);
      expect(got[34]).toBe(2000);
    });

    it('sigmoid, saturating without NaN', async () => {
      const input = Float32Array.from([...x, -1000, 1000]);
      const got = await read(ops.sigmoid(upload(input, [35])));
      expectClose(
        got,
        Array.from(input, (v) => 1 / (1 + Math.exp(-v))),
        1e-7,
        1e-6,
      );
      expect(got[33]).toBe(0);
      expect(got[34]).toBe(1);
    });
  });

  describe('softmax and argmax', () => {
    it.each([1, 0.5, 2])('softmax at temperature %d matches the float64 reference', async (temperature) => {
      const rows = 3;
      const width = 129;
      const x = randomArray(rows * width, 11, 5);
      const got = await read(ops.softmax(upload(x, [rows, width]), temperature));
      const expected = reference.softmax(reference.refTensor(x, [rows, width]), { temperature });
      expectClose(got, expected.data, 1e-7, 1e-5);
    });

    it('softmax does not overflow on logits of 1e4', async () => {
      const got = await read(ops.softmax(upload([1e4, 1e4 - 1, -1e4], [1, 3])));
      const e1 = Math.exp(-1);
      expectClose(got, [1 / (1 + e1), e1 / (1 + e1), 0], 1e-7, 1e-6);
    });

    it('argmax picks the lowest index on ties, per row', async () => {
      const x = [1, 5, 5, 2, /* row 2 */ -3, -1, -1, -1, /* row 3 */ 7, 7, 7, 7];
      const ids = ops.argmax(upload(x, [3, 4]));
      expect(ids.dtype).toBe('int32');
      expect(Array.from(await ids.data())).toEqual([1, 1, 0]);
    });

    it('argmax over [B, 1, V] logits keeps the leading shape', async () => {
      const x = randomArray(2 * 1 * 50, 12);
      const ids = ops.argmax(upload(x, [2, 1, 50]));
      expect(ids.shape).toEqual([2, 1]);
      const expected = [0, 1].map((r) => {
        const row = Array.from(x.subarray(r * 50, r * 50 + 50));
        return row.indexOf(Math.max(...row));
      });
      expect(Array.from(await ids.data())).toEqual(expected);
    });
  });

  describe('narrow and cacheWrite', () => {
    it.each([0, 1, 2, 3])('narrow along axis %d', async (axis) => {
      const shape = [3, 4, 5, 6];
      const x = Float32Array.from({ length: product(shape) }, (_, i) => i);
      const start = 1;
      const length = 2;
      const y = ops.narrow(upload(x, shape), axis, start, length);
      const outShape = [...shape];
      outShape[axis] = length;
      expect(y.shape).toEqual(outShape);
      const expected: number[] = [];
      for (let a = 0; a < outShape[0]; a++)
        for (let b = 0; b < outShape[1]; b++)
          for (let c = 0; c < outShape[2]; c++)
            for (let d = 0; d < outShape[3]; d++) {
              const index = [a, b, c, d];
              index[axis] += start;
              expected.push(((index[0] * 4 + index[1]) * 5 + index[2]) * 6 + index[3]);
            }
      expect(Array.from(await read(y))).toEqual(expected);
    });

    it('narrow keeps int32 data', async () => {
      const y = ops.narrow(upload(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]), 1, 2, 1);
      expect(y.dtype).toBe('int32');
      const data = await y.data();
      expect(data).toBeInstanceOf(Int32Array);
      expect(Array.from(data)).toEqual([3, 6]);
    });

    it('cacheWrite writes rows [position, position + T) of every batch entry in place', async () => {
      const cache = upload(new Float32Array(2 * 5 * 3), [2, 5, 3]);
      const values = upload(
        Float32Array.from({ length: 2 * 2 * 3 }, (_, i) => i + 1),
        [2, 2, 3],
      );
      ops.cacheWrite(cache, values, 2);
      const got = Array.from(await read(cache));
      expect(got).toEqual([
        ...[0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0],
        ...[0, 0, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0, 0],
      ]);
    });
  });
});
