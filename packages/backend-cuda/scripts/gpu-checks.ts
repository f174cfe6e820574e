/**
 * Checks that need a GPU, beyond the shared conformance suite: the tensor-core kernel at sizes the suite
 * does not reach (several key tiles, partial query tiles, chunked prefill, GQA, both key layouts, per-token
 * λ, large scores), compared with the float64 reference and with the SIMT kernel; split-key decoding over
 * thousands of keys; matmul in every layout and dtype; the training kernels (gpu-training-checks.ts);
 * recovery after out-of-memory; no leaked storages.
 *
 * Used by test/gpu.test.ts (vitest, where a GPU is present) and by scripts/gpu-check.ts (bundled into one
 * file for the GPU machine, which has no node_modules).
 */
import { compare, reference, toleranceFor } from '@diff-transformer/conformance';
import { createRandom, ops, tensor, tidy, type DType, type Tensor } from '@diff-transformer/core';
import type { CudaBackend } from '../src/backend.js';
import { runTrainingChecks } from './gpu-training-checks.js';

export interface CheckResult {
  name: string;
  pass: boolean;
  detail: string;
  nmse?: number;
  tolerance?: number;
}

type FloatDType = 'float32' | 'float16' | 'bfloat16';

interface AttentionCase {
  label: string;
  batch: number;
  tokens: number;
  keys: number;
  heads: number;
  kvHeads: number;
  dk: number;
  dv: number;
  shared: boolean;
  perToken: boolean;
  causal: boolean;
  keyOffset?: number;
  keyLength?: number;
  norm: boolean;
  large?: boolean;
}

const ATTENTION_CASES: AttentionCase[] = [
  {
    label: 'v1 d64/128 H4 Hkv2 T300 B2 causal subln',
    batch: 2,
    tokens: 300,
    keys: 300,
    heads: 4,
    kvHeads: 2,
    dk: 64,
    dv: 128,
    shared: false,
    perToken: false,
    causal: true,
    norm: true,
  },
  {
    label: 'v2 d64/64 shared keys per-token λ T257 non-causal keyLength 280 of 300',
    batch: 1,
    tokens: 257,
    keys: 300,
    heads: 4,
    kvHeads: 1,
    dk: 64,
    dv: 64,
    shared: true,
    perToken: true,
    causal: false,
    keyLength: 280,
    norm: false,
  },
  {
    label: 'v1 d32/64 chunk T100 keyOffset 50 keyLength 150 of 160 gqa2',
    batch: 1,
    tokens: 100,
    keys: 160,
    heads: 2,
    kvHeads: 1,
    dk: 32,
    dv: 64,
    shared: false,
    perToken: false,
    causal: true,
    keyOffset: 50,
    keyLength: 150,
    norm: true,
  },
  {
    label: 'd128/128 shared keys per-head λ T130 no norm',
    batch: 1,
    tokens: 130,
    keys: 130,
    heads: 2,
    kvHeads: 2,
    dk: 128,
    dv: 128,
    shared: true,
    perToken: false,
    causal: true,
    norm: false,
  },
  {
    label: 'v2 d32/32 H8 T64',
    batch: 1,
    tokens: 64,
    keys: 64,
    heads: 8,
    kvHeads: 8,
    dk: 32,
    dv: 32,
    shared: true,
    perToken: true,
    causal: true,
    norm: false,
  },
  {
    label: 'v1 d64/128 scores ±1e4 T96',
    batch: 1,
    tokens: 96,
    keys: 96,
    heads: 2,
    kvHeads: 1,
    dk: 64,
    dv: 128,
    shared: false,
    perToken: false,
    causal: true,
    norm: true,
    large: true,
  },
  {
    label: 'v1 d64/128 T2048 H2 causal subln (64 key tiles)',
    batch: 1,
    tokens: 2048,
    keys: 2048,
    heads: 2,
    kvHeads: 2,
    dk: 64,
    dv: 128,
    shared: false,
    perToken: false,
    causal: true,
    norm: true,
  },
];

const DECODE_CASE: AttentionCase = {
  label: 'decode T1 keyOffset 4000 keyLength 4001 of 4096 gqa2 d64/128 subln',
  batch: 2,
  tokens: 1,
  keys: 4096,
  heads: 4,
  kvHeads: 2,
  dk: 64,
  dv: 128,
  shared: false,
  perToken: false,
  causal: true,
  keyOffset: 4000,
  keyLength: 4001,
  norm: true,
};

async function upload(backend: CudaBackend, values: Float32Array, shape: number[], dtype: FloatDType) {
  const t = tensor(values, shape, { backend, dtype });
  // The reference gets what the device stores (rounded inputs are not the kernel's error).
  const stored = dtype === 'float32' ? values : ((await t.data()) as Float32Array);
  return { t, ref: reference.refTensor(stored, shape) };
}

function values(random: ReturnType<typeof createRandom>, n: number, large = false): Float32Array {
  // Large-score inputs: multiples of 1/8 in [−2, 2] (exact in every dtype), scaled by 1024 in the kernel.
  if (large) return Float32Array.from({ length: n }, () => (Math.floor(random.next() * 33) - 16) / 8);
  return Float32Array.from({ length: n }, () => random.normal());
}

async function attentionCheck(backend: CudaBackend, spec: AttentionCase, dtype: FloatDType): Promise<CheckResult[]> {
  const random = createRandom(spec.tokens * 7919 + spec.dk);
  const keyLength = spec.keyLength ?? spec.keys;
  const attrs = {
    causal: spec.causal,
    keyOffset: spec.keyOffset ?? 0,
    keyLength,
    scale: spec.large ? 1024 : 1 / Math.sqrt(spec.dk),
  };
  const keyHeads = spec.shared ? spec.kvHeads : 2 * spec.kvHeads;
  const qShape = [spec.batch, spec.tokens, 2 * spec.heads, spec.dk];
  const kShape = [spec.batch, spec.keys, keyHeads, spec.dk];
  const vShape = [spec.batch, spec.keys, spec.kvHeads, spec.dv];
  const lShape = spec.perToken ? [spec.batch, spec.tokens, spec.heads] : [spec.heads];
  const size = (s: number[]) => s.reduce((a, b) => a * b);
  const owned: Tensor[] = [];
  try {
    const q = await upload(backend, values(random, size(qShape), spec.large), qShape, dtype);
    const k = await upload(backend, values(random, size(kShape), spec.large), kShape, dtype);
    const v = await upload(backend, values(random, size(vShape)), vShape, dtype);
    const l = await upload(
      backend,
      Float32Array.from({ length: size(lShape) }, () => 0.1 + 0.8 * random.next()),
      lShape,
      dtype,
    );
    const w = await upload(
      backend,
      Float32Array.from({ length: spec.dv }, () => 1 + 0.3 * random.normal()),
      [spec.dv],
      dtype,
    );
    owned.push(q.t, k.t, v.t, l.t, w.t);
    const norm = spec.norm ? { eps: 1e-5, outputScale: 0.8 } : null;
    const run = () =>
      tidy(() => ops.diffAttention(q.t, k.t, v.t, l.t, { ...attrs, norm: norm && { ...norm, weight: w.t } }));
    const path = backend.attentionPath(q.t, k.t, v.t, true);
    const fast = run();
    owned.push(fast);
    backend.setAttentionPath('simt');
    const simt = run();
    owned.push(simt);
    backend.setAttentionPath('auto');
    const expected = reference.diffAttention(q.ref, k.ref, v.ref, l.ref, w.ref, { ...attrs, norm });
    const fastData = await fast.data();
    const simtData = await simt.data();
    const tolerance = toleranceFor('diffAttention', 'cuda', dtype as DType);
    const a = compare(fastData, expected.data);
    const b = compare(simtData, expected.data);
    const name = `diffAttention ${dtype} ${spec.label}`;
    return [
      {
        name: `${name} [${path}]`,
        pass: a.nonFinite === 0 && a.nmse <= tolerance,
        nmse: a.nmse,
        tolerance,
        detail: `path ${path}, max abs error ${a.maxAbsError.toExponential(2)}`,
      },
      {
        name: `${name} [simt]`,
        pass: b.nonFinite === 0 && b.nmse <= tolerance,
        nmse: b.nmse,
        tolerance,
        detail: `max abs error ${b.maxAbsError.toExponential(2)}`,
      },
    ];
  } finally {
    backend.setAttentionPath('auto');
    for (const t of owned) t.dispose();
  }
}

async function matmulChecks(backend: CudaBackend, dtype: FloatDType): Promise<CheckResult[]> {
  const random = createRandom(42);
  const results: CheckResult[] = [];
  const [m, n, k] = [300, 200, 136];
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      for (const batched of [false, true]) {
        const batch = batched ? [3] : [];
        const aShape = [...batch, ...(transposeA ? [k, m] : [m, k])];
        const bShape = [...(batched && transposeB ? batch : []), ...(transposeB ? [n, k] : [k, n])];
        const a = await upload(
          backend,
          values(
            random,
            aShape.reduce((x, y) => x * y),
          ),
          aShape,
          dtype,
        );
        const b = await upload(
          backend,
          values(
            random,
            bShape.reduce((x, y) => x * y),
          ),
          bShape,
          dtype,
        );
        const out = ops.matmul(a.t, b.t, { transposeA, transposeB });
        const c = compare(await out.data(), reference.matmul(a.ref, b.ref, { transposeA, transposeB }).data);
        const tolerance = toleranceFor('matmul', 'cuda', dtype as DType);
        results.push({
          name:
            `matmul ${dtype} a${aShape.join('x')}${transposeA ? 'ᵀ' : ''} ` +
            `b${bShape.join('x')}${transposeB ? 'ᵀ' : ''}`,
          pass: c.nonFinite === 0 && c.nmse <= tolerance,
          nmse: c.nmse,
          tolerance,
          detail: `max abs error ${c.maxAbsError.toExponential(2)}`,
        });
        for (const t of [a.t, b.t, out]) t.dispose();
      }
    }
  }
  return results;
}

async function outOfMemoryCheck(backend: CudaBackend): Promise<CheckResult> {
  const total = backend.info.totalMemory;
  let code = 'none';
  try {
    // Twice the device's memory as float32 elements: must fail cleanly with DEVICE_OUT_OF_MEMORY.
    const huge = backend.zeros(Math.ceil((2 * total) / 4), 'float32');
    backend.free(huge);
  } catch (error) {
    code = (error as { code?: string }).code ?? String(error);
  }
  const a = tensor([1, 2, 3], [3], { backend });
  const b = tensor([10, 20, 30], [3], { backend });
  const sum = ops.add(a, b);
  const got = Array.from(await sum.data());
  for (const t of [a, b, sum]) t.dispose();
  const ok = code === 'DEVICE_OUT_OF_MEMORY' && got.join(',') === '11,22,33';
  return {
    name: 'out of memory is a DeviceError and the backend keeps working',
    pass: ok,
    detail: `error code ${code}, then add gave [${got.join(', ')}]`,
  };
}

/** Runs every check; `log` receives one line per result. */
export async function runGpuChecks(
  backend: CudaBackend,
  log: (line: string) => void = () => {},
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const record = (r: CheckResult) => {
    results.push(r);
    log(
      `${r.pass ? 'pass' : 'FAIL'}  ${r.name}` +
        `${r.nmse !== undefined ? `  nmse ${r.nmse.toExponential(2)} (≤ ${r.tolerance})` : ''}  ${r.detail}`,
    );
  };
  const liveBefore = backend.liveStorages;
  for (const dtype of ['bfloat16', 'float16'] as const) {
    for (const spec of ATTENTION_CASES) for (const r of await attentionCheck(backend, spec, dtype)) record(r);
  }
  for (const dtype of ['float32', 'bfloat16'] as const)
    for (const r of await attentionCheck(backend, DECODE_CASE, dtype)) record(r);
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const)
    for (const r of await matmulChecks(backend, dtype)) record(r);
  await runTrainingChecks(backend, record);
  record(await outOfMemoryCheck(backend));
  await backend.synchronize();
  const leaked = backend.liveStorages - liveBefore;
  record({ name: 'no storage leaked by the checks', pass: leaked === 0, detail: `${leaked} storage(s) left` });
  return results;
}
