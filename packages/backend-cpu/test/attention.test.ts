/**
 * The streaming attention kernels against the full-matrix float64 references: every head layout (V1
 * half-head keys, V2 shared keys, GQA 1/2/4), λ per head and per token, the fused norm, causal and
 * not, decoding against a larger cache, and key counts on both sides of the block size.
 */
import { ops, tensor, type Tensor } from '@diff-transformer/core';
import { createCpuBackend, type CpuBackend } from '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reference } from '@diff-transformer/conformance';
import { ENGINES, expectClose, product, randomArray } from './helpers.js';

const read = async (t: Tensor): Promise<Float32Array> => (await t.data()) as Float32Array;

interface Case {
  name: string;
  batch: number;
  tokens: number;
  /** Storage length of k and v (a cache's capacity). */
  keys: number;
  heads: number;
  kvHeads: number;
  dk: number;
  dv: number;
  sharedKeys: boolean;
  lambdaPerToken: boolean;
  norm: 'weight' | 'no-weight' | null;
  causal: boolean;
  keyOffset: number;
  keyLength: number;
}

const base: Case = {
  name: '',
  batch: 2,
  tokens: 7,
  keys: 7,
  heads: 4,
  kvHeads: 4,
  dk: 16,
  dv: 32,
  sharedKeys: false,
  lambdaPerToken: false,
  norm: 'weight',
  causal: true,
  keyOffset: 0,
  keyLength: 7,
};

const cases: Case[] = [
  { ...base, name: 'V1, MHA, causal, norm with weight' },
  { ...base, name: 'V1, GQA 2', kvHeads: 2 },
  { ...base, name: 'V1, GQA 4', kvHeads: 1 },
  { ...base, name: 'V1, norm without weight', norm: 'no-weight' },
  { ...base, name: 'V1, no norm, non-causal', norm: null, causal: false },
  {
    ...base,
    name: 'V2, shared keys, per-token λ, GQA 2',
    sharedKeys: true,
    lambdaPerToken: true,
    norm: null,
    kvHeads: 2,
    dv: 16,
  },
  {
    ...base,
    name: 'V2, shared keys, GQA 4, per-token λ with norm',
    sharedKeys: true,
    lambdaPerToken: true,
    kvHeads: 1,
    dv: 16,
  },
  { ...base, name: 'single token T = S = 1', batch: 1, tokens: 1, keys: 1, keyLength: 1 },
  {
    ...base,
    name: 'odd sizes across blocks: T = S = 129',
    batch: 1,
    tokens: 129,
    keys: 129,
    keyLength: 129,
    heads: 2,
    kvHeads: 1,
  },
  {
    ...base,
    name: 'exactly one block: T = S = 64, non-causal',
    batch: 1,
    tokens: 64,
    keys: 64,
    keyLength: 64,
    causal: false,
  },
  {
    ...base,
    name: 'one past a block: T = S = 65',
    batch: 1,
    tokens: 65,
    keys: 65,
    keyLength: 65,
    heads: 1,
    kvHeads: 1,
  },
  {
    ...base,
    name: 'head widths 128/256',
    batch: 1,
    tokens: 33,
    keys: 33,
    keyLength: 33,
    heads: 2,
    kvHeads: 2,
    dk: 128,
    dv: 256,
  },
  {
    ...base,
    name: 'odd head width 33',
    batch: 1,
    tokens: 9,
    keys: 9,
    keyLength: 9,
    heads: 2,
    kvHeads: 1,
    dk: 33,
    dv: 7,
  },
  { ...base, name: 'decode T = 1 against a larger cache', tokens: 1, keys: 200, keyOffset: 130, keyLength: 131 },
  // Up to 4 query rows take the WebAssembly decode path: odd widths there too, and a standard-attention twin.
  {
    ...base,
    name: 'decode 2 tokens, odd head widths 33/7, GQA 4',
    tokens: 2,
    keys: 90,
    keyOffset: 70,
    keyLength: 72,
    dk: 33,
    dv: 7,
    kvHeads: 1,
  },
  {
    ...base,
    name: 'decode 4 tokens, head widths 16/40, non-causal',
    tokens: 4,
    keys: 130,
    keyLength: 129,
    dv: 40,
    causal: false,
  },
  {
    ...base,
    name: 'decode 3 tokens into a cache, V2 per-token λ',
    tokens: 3,
    keys: 100,
    keyOffset: 70,
    keyLength: 73,
    sharedKeys: true,
    lambdaPerToken: true,
    dv: 16,
    norm: null,
  },
  { ...base, name: 'non-causal over a cache prefix', causal: false, tokens: 5, keys: 90, keyOffset: 0, keyLength: 77 },
];

function inputs(c: Case, seed: number) {
  const kHeads = c.sharedKeys ? c.kvHeads : 2 * c.kvHeads;
  const shapes = {
    q: [c.batch, c.tokens, 2 * c.heads, c.dk],
    k: [c.batch, c.keys, kHeads, c.dk],
    v: [c.batch, c.keys, c.kvHeads, c.dv],
    lambda: c.lambdaPerToken ? [c.batch, c.tokens, c.heads] : [c.heads],
  };
  const data = {
    q: randomArray(product(shapes.q), seed),
    k: randomArray(product(shapes.k), seed + 1),
    v: randomArray(product(shapes.v), seed + 2),
    lambda: Float32Array.from(randomArray(product(shapes.lambda), seed + 3), (x) => 0.5 + 0.2 * x),
    weight: randomArray(c.dv, seed + 4),
  };
  return { shapes, data };
}

describe.each(ENGINES)('%s engine', (engine) => {
  let backend: CpuBackend;
  beforeAll(async () => {
    backend = await createCpuBackend({ engine });
  });
  afterAll(() => backend.dispose());
  const upload = (values: ArrayLike<number> | Int32Array, shape: readonly number[]): Tensor =>
    tensor(values, shape, { backend });

  describe('diffAttention', () => {
    it.each(cases)('$name', async (c) => {
      const { shapes, data } = inputs(c, 100);
      const mask = { causal: c.causal, keyOffset: c.keyOffset, keyLength: c.keyLength, scale: 1 / Math.sqrt(c.dk) };
      const norm = c.norm ? { weight: c.norm === 'weight' ? data.weight : null, eps: 1e-5, outputScale: 0.8 } : null;
      const y = ops.diffAttention(
        upload(data.q, shapes.q),
        upload(data.k, shapes.k),
        upload(data.v, shapes.v),
        upload(data.lambda, shapes.lambda),
        { ...mask, norm: norm && { ...norm, weight: norm.weight && upload(norm.weight, [c.dv]) } },
      );
      expect(y.shape).toEqual([c.batch, c.tokens, c.heads, c.dv]);
      const expected = reference.diffAttention(
        reference.refTensor(data.q, shapes.q),
        reference.refTensor(data.k, shapes.k),
        reference.refTensor(data.v, shapes.v),
        reference.refTensor(data.lambda, shapes.lambda),
        norm?.weight ? reference.refTensor(norm.weight, [c.dv]) : null,
        { ...mask, norm: norm && { eps: norm.eps, outputScale: norm.outputScale } },
      );
      expectClose(await read(y), expected.data, 2e-5, 1e-4);
    });

    it('keys past keyLength are never read', async () => {
      const c = cases.find((x) => x.name.startsWith('decode T = 1'))!;
      const { shapes, data } = inputs(c, 7);
      const run = async (k: Float32Array, v: Float32Array) =>
        read(
          ops.diffAttention(
            upload(data.q, shapes.q),
            upload(k, shapes.k),
            upload(v, shapes.v),
            upload(data.lambda, shapes.lambda),
            {
              keyOffset: c.keyOffset,
              keyLength: c.keyLength,
            },
          ),
        );
      const clean = await run(data.k, data.v);
      // Poison every row at or past keyLength in both batch entries.
      const k = data.k.slice();
      const v = data.v.slice();
      const kRow = product(shapes.k.slice(2));
      const vRow = product(shapes.v.slice(2));
      for (let b = 0; b < c.batch; b++) {
        k.fill(NaN, (b * c.keys + c.keyLength) * kRow, (b + 1) * c.keys * kRow);
        v.fill(NaN, (b * c.keys + c.keyLength) * vRow, (b + 1) * c.keys * vRow);
      }
      expect(await run(k, v)).toEqual(clean);
    });

    it('subtracts the running maximum: logits of 1e4 stay finite and exact', async () => {
      // q·k·scale = ±1e4 on alternating keys: a naive exp would overflow to Infinity.
      const keys = 150;
      const dk = 4;
      const q = new Float32Array([100, 0, 0, 0, 100, 0, 0, 0]); // both maps of one head
      const k = new Float32Array(keys * 2 * dk);
      const v = new Float32Array(keys * 2);
      for (let s = 0; s < keys; s++) {
        const sign = s % 3 === 0 ? 1 : -1;
        k[s * 2 * dk] = sign * 100; // map 1 key
        k[s * 2 * dk + dk] = -sign * 100; // map 2 key: the opposite keys win
        v[s * 2] = s;
        v[s * 2 + 1] = 1;
      }
      const y = await read(
        ops.diffAttention(
          upload(q, [1, 1, 2, dk]),
          upload(k, [1, keys, 2, dk]),
          upload(v, [1, keys, 1, 2]),
          upload([0.5], [1]),
          {
            causal: false,
            scale: 1,
          },
        ),
      );
      const winners1 = Array.from({ length: keys }, (_, s) => s).filter((s) => s % 3 === 0);
      const winners2 = Array.from({ length: keys }, (_, s) => s).filter((s) => s % 3 !== 0);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expectClose(y, [mean(winners1) - 0.5 * mean(winners2), 1 - 0.5], 1e-5, 1e-6);
    });
  });

  describe('attention', () => {
    const standard = cases.filter((c) => !c.sharedKeys);
    it.each(standard)('$name', async (c) => {
      const shapes = {
        q: [c.batch, c.tokens, c.heads, c.dk],
        k: [c.batch, c.keys, c.kvHeads, c.dk],
        v: [c.batch, c.keys, c.kvHeads, c.dv],
      };
      const q = randomArray(product(shapes.q), 200);
      const k = randomArray(product(shapes.k), 201);
      const v = randomArray(product(shapes.v), 202);
      const mask = { causal: c.causal, keyOffset: c.keyOffset, keyLength: c.keyLength, scale: 1 / Math.sqrt(c.dk) };
      const y = ops.attention(upload(q, shapes.q), upload(k, shapes.k), upload(v, shapes.v), mask);
      expect(y.shape).toEqual([c.batch, c.tokens, c.heads, c.dv]);
      const expected = reference.attention(
        reference.refTensor(q, shapes.q),
        reference.refTensor(k, shapes.k),
        reference.refTensor(v, shapes.v),
        mask,
      );
      expectClose(await read(y), expected.data, 1e-5, 1e-4);
    });

    it('logits of 1e4 do not overflow', async () => {
      const q = new Float32Array([100, 0]);
      const k = new Float32Array([100, 0, -100, 0, 100, 0]);
      const v = new Float32Array([1, 2, 3]);
      const y = await read(
        ops.attention(upload(q, [1, 1, 1, 2]), upload(k, [1, 3, 1, 2]), upload(v, [1, 3, 1, 1]), {
          causal: false,
          scale: 1,
        }),
      );
      expectClose(y, [2], 1e-6, 1e-6);
    });
  });
});
