/**
 * The engines against each other on the same inputs, at sizes that take the parallel path:
 *   - threaded WebAssembly gives exactly the single-threaded result: each output element is computed
 *     by one task in a fixed order, whichever thread claims it;
 *   - WebAssembly SIMD agrees with the TypeScript kernels (float64 accumulation) within float32
 *     rounding, and rotary (double arithmetic in both) bit for bit;
 *   - the relaxed-SIMD binary agrees with SIMD128, in a child Node that validates relaxed SIMD.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ops, tensor, type Backend, type Tensor } from '@diff-transformer/core';
import { createCpuBackend } from '@diff-transformer/backend-cpu';
import { afterAll, describe, expect, it } from 'vitest';
import { expectClose, product, randomArray } from './helpers.js';

const single = await createCpuBackend({ engine: 'wasm-simd128', threads: 1 });
// More threads than this machine may have cores: workers that get little CPU simply claim fewer tasks.
const threaded = await createCpuBackend({ engine: 'wasm-simd128', threads: 3 });
const typescript = await createCpuBackend({ engine: 'typescript' });
afterAll(() => {
  for (const b of [single, threaded, typescript]) b.dispose();
});

/** A workload: builds its inputs on a backend and runs one kernel. */
type Workload = (backend: Backend) => Tensor;

const input = (backend: Backend, shape: number[], seed: number, scale = 1): Tensor =>
  tensor(
    randomArray(product(shape), seed).map((x) => scale * x),
    shape,
    { backend },
  );

const matmuls: Array<[string, Workload, number]> = [];
for (const transposeA of [false, true]) {
  for (const transposeB of [false, true]) {
    const [m, k, n] = [130, 300, 270];
    matmuls.push([
      `[${m}, ${k}] · [${k}, ${n}] transposeA ${transposeA} transposeB ${transposeB}`,
      (backend) =>
        ops.matmul(input(backend, transposeA ? [k, m] : [m, k], 1), input(backend, transposeB ? [n, k] : [k, n], 2), {
          transposeA,
          transposeB,
        }),
      k,
    ]);
  }
}
matmuls.push(
  [
    'batched [3, 70, 64] · [3, 64, 90]',
    (backend) => ops.matmul(input(backend, [3, 70, 64], 3), input(backend, [3, 64, 90], 4)),
    64,
  ],
  [
    'linear [2, 50, 128] · weight [200, 128]',
    (backend) => ops.linear(input(backend, [2, 50, 128], 5), input(backend, [200, 128], 6)),
    128,
  ],
  [
    'decode-sized [1, 512] · [512, 700]',
    (backend) => ops.matmul(input(backend, [1, 512], 7), input(backend, [512, 700], 8)),
    512,
  ],
  [
    'decode-sized linear [3, 512] · weight [701, 512]',
    (backend) => ops.linear(input(backend, [3, 512], 9), input(backend, [701, 512], 10)),
    512,
  ],
);

interface AttentionCase {
  batch: number;
  tokens: number;
  keys: number;
  heads: number;
  kvHeads: number;
  dk: number;
  dv: number;
  sharedKeys: boolean;
  lambdaPerToken: boolean;
  norm: boolean;
  causal: boolean;
  keyOffset: number;
}
const attentionCase = (c: Partial<AttentionCase>): AttentionCase => ({
  batch: 2,
  tokens: 200,
  keys: 200,
  heads: 4,
  kvHeads: 2,
  dk: 32,
  dv: 64,
  sharedKeys: false,
  lambdaPerToken: false,
  norm: true,
  causal: true,
  keyOffset: 0,
  ...c,
});

const diffAttention =
  (c: AttentionCase): Workload =>
  (backend) => {
    const kHeads = c.sharedKeys ? c.kvHeads : 2 * c.kvHeads;
    const lambda = c.lambdaPerToken ? [c.batch, c.tokens, c.heads] : [c.heads];
    return ops.diffAttention(
      input(backend, [c.batch, c.tokens, 2 * c.heads, c.dk], 11),
      input(backend, [c.batch, c.keys, kHeads, c.dk], 12),
      input(backend, [c.batch, c.keys, c.kvHeads, c.dv], 13),
      input(backend, lambda, 14, 0.2),
      {
        causal: c.causal,
        keyOffset: c.keyOffset,
        keyLength: c.causal ? c.keyOffset + c.tokens : c.keys,
        norm: c.norm ? { weight: input(backend, [c.dv], 15), eps: 1e-5, outputScale: 0.8 } : null,
      },
    );
  };

const attentions: Array<[string, Workload]> = [
  ['diffAttention V1, GQA 2, causal, fused norm', diffAttention(attentionCase({}))],
  [
    'diffAttention V2 shared keys, per-token λ, no norm',
    diffAttention(attentionCase({ sharedKeys: true, lambdaPerToken: true, norm: false, dv: 32 })),
  ],
  [
    'diffAttention decoding 3 tokens against a cache of 300',
    diffAttention(attentionCase({ tokens: 3, keys: 300, keyOffset: 250, heads: 8 })),
  ],
  [
    'diffAttention dv = 24 (padded value rows), non-causal',
    diffAttention(attentionCase({ dv: 24, causal: false, tokens: 77, keys: 150 })),
  ],
  [
    'attention, GQA 4, causal, T = 150',
    (backend) =>
      ops.attention(
        input(backend, [1, 150, 4, 64], 16),
        input(backend, [1, 150, 1, 64], 17),
        input(backend, [1, 150, 1, 64], 18),
      ),
  ],
  [
    'attention dv = 20, non-causal',
    (backend) =>
      ops.attention(
        input(backend, [2, 90, 2, 16], 19),
        input(backend, [2, 90, 2, 16], 20),
        input(backend, [2, 90, 2, 20], 21),
        { causal: false },
      ),
  ],
];

// Memory-bound kernels split into chunks of rows or elements: sizes past the parallel threshold, odd widths.
const lightKernels: Array<[string, Workload]> = [
  [
    'rmsNorm [600, 256] with weight',
    (backend) => ops.rmsNorm(input(backend, [600, 256], 22, 3), input(backend, [256], 23), 1e-5),
  ],
  ['rmsNorm [300, 513] without weight', (backend) => ops.rmsNorm(input(backend, [300, 513], 24, 3), null, 1e-6)],
  ['swiglu [300, 517]', (backend) => ops.swiglu(input(backend, [300, 517], 25, 8), input(backend, [300, 517], 26))],
  ['add [300, 517]', (backend) => ops.add(input(backend, [300, 517], 27), input(backend, [300, 517], 28))],
  ['sigmoid [140001]', (backend) => ops.sigmoid(input(backend, [140001], 29, 30))],
];

// rotary at a parallel size ([2, 300, 4, 64]: 153,600 elements), both layouts, partial rotary, an offset.
const rotaries: Array<[string, Workload]> = [];
for (const layout of ['interleaved', 'half'] as const)
  for (const half of [32, 12])
    rotaries.push([
      `rotary ${layout}, r = ${2 * half} of 64, offset 7`,
      (backend) =>
        ops.rotary(
          input(backend, [2, 300, 4, 64], 30),
          input(backend, [320, half], 31),
          input(backend, [320, half], 32),
          {
            layout,
            positionOffset: 7,
          },
        ),
    ]);

const run = async (workload: Workload, backend: Backend): Promise<Float32Array> =>
  (await workload(backend).data()) as Float32Array;

/** Bit-for-bit equality, reporting the first differing element (vitest's toEqual is slow on 10⁵ elements). */
function expectIdentical(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const first = a.findIndex((bits, i) => bits !== b[i]);
  if (first >= 0) expect.fail(`element ${first}: ${actual[first]} ≠ ${expected[first]}`);
}

describe('threaded and single-threaded WebAssembly give identical results', () => {
  it.each([...matmuls.map(([name, w]) => [name, w] as const), ...attentions, ...lightKernels, ...rotaries])(
    '%s',
    async (_name, workload) => {
      expect(threaded.threads).toBe(3);
      expectIdentical(await run(workload, threaded), await run(workload, single));
    },
  );
});

describe('WebAssembly SIMD agrees with the TypeScript kernels', () => {
  it.each(matmuls)('matmul %s', async (_name, workload, k) => {
    // float32 accumulation over K terms of size ~1 against float64.
    expectClose(await run(workload, threaded), await run(workload, typescript), 2e-7 * k, 1e-5);
  });

  it.each(attentions)('%s', async (_name, workload) => {
    expectClose(await run(workload, threaded), await run(workload, typescript), 2e-5, 1e-4);
  });

  it.each(lightKernels)('%s', async (_name, workload) => {
    expectClose(await run(workload, threaded), await run(workload, typescript), 1e-6, 1e-6);
  });

  // Both compute each pair in double and round once: the same bits.
  it.each(rotaries)('%s, bit for bit', async (_name, workload) => {
    expectIdentical(await run(workload, threaded), await run(workload, typescript));
  });
});

describe('relaxed SIMD', () => {
  it('gives what SIMD128 gives within float32 rounding (child Node with relaxed SIMD enabled)', () => {
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `
      const { createCpuBackend } = await import(${JSON.stringify(dist)});
      const { ops, tensor } = await import('@diff-transformer/core');
      const relaxed = await createCpuBackend({ engine: 'wasm-relaxed-simd', threads: 2 });
      const plain = await createCpuBackend({ engine: 'wasm-simd128', threads: 2 });
      const values = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 2);
      const results = {};
      for (const backend of [relaxed, plain]) {
        const t = (shape, seed) => tensor(values(shape.reduce((a, b) => a * b, 1), seed), shape, { backend });
        const product = await ops.matmul(t([96, 200], 1), t([200, 150], 2)).data();
        const attention = await ops.diffAttention(
          t([1, 130, 4, 32], 3), t([1, 130, 4, 32], 4), t([1, 130, 2, 64], 5), t([2], 6),
          { norm: { weight: null, eps: 1e-5, outputScale: 0.8 } },
        ).data();
        results[backend.engine] = { product: Array.from(product), attention: Array.from(attention) };
      }
      console.log(JSON.stringify(results));
    `;
    const child = spawnSync(
      process.execPath,
      ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
        timeout: 60_000,
        maxBuffer: 64 * 2 ** 20,
        cwd: fileURLToPath(new URL('..', import.meta.url)),
      },
    );
    expect(child.stderr).toBe('');
    const results = JSON.parse(child.stdout) as Record<string, { product: number[]; attention: number[] }>;
    expect(Object.keys(results)).toEqual(['wasm-relaxed-simd', 'wasm-simd128']);
    const relaxed = results['wasm-relaxed-simd'];
    const plain = results['wasm-simd128'];
    // A fused multiply-add rounds once instead of twice: close, and (almost surely) not identical.
    expectClose(relaxed.product, plain.product, 2e-7 * 200, 1e-5);
    expectClose(relaxed.attention, plain.attention, 2e-5, 1e-4);
    expect(relaxed.product).not.toEqual(plain.product);
  });
});
