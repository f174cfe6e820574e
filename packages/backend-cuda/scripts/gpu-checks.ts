/**
 * Checks that need a GPU, beyond the shared conformance suite: the tensor-core kernel at sizes the suite
 * does not reach (several key tiles, partial query tiles, chunked prefill, GQA, both key layouts, per-token
 * λ, large scores, every head width it has, warps along dv, T < 16, float32 as 3xTF32, standard attention),
 * compared with the float64 reference and with the SIMT kernel; split keys (decoding, a short prefill against a
 * long cache) in both kernels; matmul in every layout and dtype, the m ≤ 4 GEMV path with and without split k;
 * the training kernels (gpu-training-checks.ts); reads over 256 MiB, strided copies whose pitch exceeds 2³¹ − 1
 * bytes; recovery after out-of-memory; no leaked storages.
 *
 * Used by test/gpu.test.ts (vitest, where a GPU is present) and by scripts/gpu-check.ts (bundled into one
 * file for the GPU machine, which has no node_modules).
 */
import { compare, reference, toleranceFor } from '@diff-transformer/conformance';
import { createRandom, ops, tensor, tidy, zeros, type DType, type Tensor } from '@diff-transformer/core';
import type { CudaBackend } from '../src/backend.js';
import { runTrainingChecks } from './gpu-training-checks.js';

export interface CheckResult {
  name: string;
  pass: boolean;
  detail: string;
  nmse?: number;
  tolerance?: number;
}

export type FloatDType = 'float32' | 'float16' | 'bfloat16';

export interface AttentionCase {
  label: string;
  /** false: standard attention (q has `heads` heads, k has kvHeads; shared, perToken and norm unused). */
  diff?: boolean;
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
  /** Also run in float32 (3xTF32 on tensor cores): a cross-section, to keep the run short. */
  float32?: boolean;
}

const ATTENTION_CASES: AttentionCase[] = [
  {
    label: 'v1 d64/128 H4 Hkv2 T300 B2 causal subln',
    float32: true,
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
    float32: true,
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
  {
    label: 'v1 d16/32 T5 (T < 16) subln',
    float32: true,
    batch: 1,
    tokens: 5,
    keys: 5,
    heads: 4,
    kvHeads: 2,
    dk: 16,
    dv: 32,
    shared: false,
    perToken: false,
    causal: true,
    norm: true,
  },
  {
    label: 'v1 d96/192 T150 gqa2 subln (warps along dv)',
    batch: 1,
    tokens: 150,
    keys: 150,
    heads: 4,
    kvHeads: 2,
    dk: 96,
    dv: 192,
    shared: false,
    perToken: false,
    causal: true,
    norm: true,
  },
  {
    label: 'v1 d128/256 T100 subln (warps along dv)',
    float32: true,
    batch: 1,
    tokens: 100,
    keys: 100,
    heads: 2,
    kvHeads: 1,
    dk: 128,
    dv: 256,
    shared: false,
    perToken: false,
    causal: true,
    norm: true,
  },
  {
    label: 'v1 prefill T40 keyOffset 4000 of 4040 gqa2 d64/128 subln (split keys)',
    float32: true,
    batch: 1,
    tokens: 40,
    keys: 4040,
    heads: 4,
    kvHeads: 2,
    dk: 64,
    dv: 128,
    shared: false,
    perToken: false,
    causal: true,
    keyOffset: 4000,
    norm: true,
  },
  {
    label: 'attention d64/64 H8 Hkv2 T300 causal',
    float32: true,
    diff: false,
    batch: 2,
    tokens: 300,
    keys: 300,
    heads: 8,
    kvHeads: 2,
    dk: 64,
    dv: 64,
    shared: true,
    perToken: false,
    causal: true,
    norm: false,
  },
  {
    label: 'attention d128/128 T77 non-causal keyLength 90 of 100',
    diff: false,
    batch: 1,
    tokens: 77,
    keys: 100,
    heads: 2,
    kvHeads: 2,
    dk: 128,
    dv: 128,
    shared: true,
    perToken: false,
    causal: false,
    keyLength: 90,
    norm: false,
  },
  {
    label: 'attention d96/96 T3 (T < 16) keyOffset 60',
    float32: true,
    diff: false,
    batch: 1,
    tokens: 3,
    keys: 63,
    heads: 4,
    kvHeads: 4,
    dk: 96,
    dv: 96,
    shared: true,
    perToken: false,
    causal: true,
    keyOffset: 60,
    norm: false,
  },
];

const STANDARD_DECODE_CASE: AttentionCase = {
  label: 'attention decode T1 keyOffset 5000 of 5001 d128/128 H8 Hkv1',
  diff: false,
  batch: 1,
  tokens: 1,
  keys: 5001,
  heads: 8,
  kvHeads: 1,
  dk: 128,
  dv: 128,
  shared: true,
  perToken: false,
  causal: true,
  keyOffset: 5000,
  norm: false,
};

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

export async function upload(
  backend: CudaBackend,
  values: Float32Array,
  shape: number[],
  dtype: FloatDType,
): Promise<{ t: Tensor; ref: reference.RefTensor }> {
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
  const diff = spec.diff ?? true;
  const keyHeads = !diff || spec.shared ? spec.kvHeads : 2 * spec.kvHeads;
  const qShape = [spec.batch, spec.tokens, (diff ? 2 : 1) * spec.heads, spec.dk];
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
      tidy(() =>
        diff
          ? ops.diffAttention(q.t, k.t, v.t, l.t, { ...attrs, norm: norm && { ...norm, weight: w.t } })
          : ops.attention(q.t, k.t, v.t, attrs),
      );
    const plan = backend.attentionPlan(q.t, k.t, v.t, diff);
    const path = plan.path === 'flash' ? `flash, ${plan.stages} stages` : 'rows';
    const fast = run();
    owned.push(fast);
    backend.setAttentionPath('simt');
    const simt = run();
    owned.push(simt);
    backend.setAttentionPath('auto');
    const expected = diff
      ? reference.diffAttention(q.ref, k.ref, v.ref, l.ref, w.ref, { ...attrs, norm })
      : reference.attention(q.ref, k.ref, v.ref, attrs);
    const fastData = await fast.data();
    const simtData = await simt.data();
    const kernel = diff ? 'diffAttention' : 'attention';
    const tolerance = toleranceFor(kernel, 'cuda', dtype as DType);
    const a = compare(fastData, expected.data);
    const b = compare(simtData, expected.data);
    const name = `${kernel} ${dtype} ${spec.label}`;
    const splits = plan.splits > 1 ? `, keys split ${plan.splits} ways` : '';
    return [
      {
        name: `${name} [${plan.path}]`,
        pass: a.nonFinite === 0 && a.nmse <= tolerance,
        nmse: a.nmse,
        tolerance,
        detail: `path ${path}${splits}, max abs error ${a.maxAbsError.toExponential(2)}`,
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

/** matmul with m ≤ 4 (decoding's x·Wᵀ): the GEMV kernel, k split across blocks where n alone is few blocks. */
async function gemvChecks(backend: CudaBackend, dtype: FloatDType): Promise<CheckResult[]> {
  const random = createRandom(4242);
  const results: CheckResult[] = [];
  const shapes: Array<{ a: number[]; b: number[]; transposeA: boolean; transposeB: boolean }> = [
    { a: [1, 4096], b: [11008, 4096], transposeA: false, transposeB: true }, // x·Wᵀ, 16-byte loads
    { a: [3, 1000], b: [300, 1000], transposeA: false, transposeB: true }, // k not a multiple of 16 bytes
    { a: [2, 4, 5000], b: [5000, 40], transposeA: false, transposeB: false }, // few columns: k split
    { a: [2, 777, 2], b: [2, 777, 129], transposeA: true, transposeB: false },
  ];
  for (const shape of shapes) {
    const size = (s: number[]) => s.reduce((x, y) => x * y);
    const a = await upload(backend, values(random, size(shape.a)), shape.a, dtype);
    const b = await upload(backend, values(random, size(shape.b)), shape.b, dtype);
    const attrs = { transposeA: shape.transposeA, transposeB: shape.transposeB };
    const out = ops.matmul(a.t, b.t, attrs);
    const c = compare(await out.data(), reference.matmul(a.ref, b.ref, attrs).data);
    const tolerance = toleranceFor('matmul', 'cuda', dtype as DType);
    results.push({
      name:
        `matmul (m ≤ 4) ${dtype} a${shape.a.join('x')}${shape.transposeA ? 'ᵀ' : ''} ` +
        `b${shape.b.join('x')}${shape.transposeB ? 'ᵀ' : ''}`,
      pass: c.nonFinite === 0 && c.nmse <= tolerance,
      nmse: c.nmse,
      tolerance,
      detail: `max abs error ${c.maxAbsError.toExponential(2)}`,
    });
    for (const t of [a.t, b.t, out]) t.dispose();
  }
  return results;
}

/**
 * Host-side paths large sizes take: a read over 256 MiB (chunked through one staging buffer), and cacheWrite /
 * narrow on a cache whose per-batch pitch exceeds 2³¹ − 1 bytes (cudaMemcpy2DAsync's limit: one copy per row).
 */
async function largeCopyChecks(backend: CudaBackend): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const dtype of ['float32', 'bfloat16'] as const) {
    const count = 80 * 2 ** 20; // 320 MiB as float32 on the host side of the read
    const host = Float32Array.from({ length: count }, (_, i) => (i % 251) - 125); // exact in bfloat16
    const t = tensor(host, [count], { backend, dtype });
    const back = await t.data();
    let wrong = 0;
    for (let i = 0; i < count; i++) if (back[i] !== host[i]) wrong++;
    t.dispose();
    results.push({
      name: `read of ${count} ${dtype} values (${((count * 4) / 2 ** 20).toFixed(0)} MiB as float32)`,
      pass: wrong === 0,
      detail: `${wrong} values differ`,
    });
  }
  // [2, capacity, 1, 1024] float32: 4 KiB a row, capacity · 4 KiB > 2³¹ − 1 bytes between batch entries.
  const capacity = 2 ** 19 + 16;
  const width = 1024;
  const valuesHost = Float32Array.from({ length: 2 * 3 * width }, (_, i) => i + 1);
  const values3 = tensor(valuesHost, [2, 3, 1, width], { backend });
  const kv = zeros([2, capacity, 1, width], { backend }); // device memset: nothing crosses from the host
  let detail = '';
  let pass = false;
  try {
    ops.cacheWrite(kv, values3, capacity - 3);
    const tail = ops.narrow(kv, 1, capacity - 3, 3);
    const got = await tail.data();
    tail.dispose();
    const wrong = valuesHost.reduce((n, x, i) => n + (got[i] === x ? 0 : 1), 0);
    pass = wrong === 0;
    detail = `${wrong} of ${valuesHost.length} values differ after cacheWrite and narrow at position ${capacity - 3}`;
  } catch (error) {
    detail = `threw ${(error as Error).message}`;
  } finally {
    kv.dispose();
    values3.dispose();
  }
  results.push({ name: 'cacheWrite and narrow with a pitch over 2³¹ − 1 bytes (B = 2)', pass, detail });
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
  for (const dtype of ['bfloat16', 'float16', 'float32'] as const) {
    for (const spec of ATTENTION_CASES) {
      if (dtype === 'float32' && !spec.float32) continue;
      for (const r of await attentionCheck(backend, spec, dtype)) record(r);
    }
  }
  for (const dtype of ['float32', 'bfloat16'] as const) {
    for (const spec of [DECODE_CASE, STANDARD_DECODE_CASE])
      for (const r of await attentionCheck(backend, spec, dtype)) record(r);
  }
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    for (const r of await matmulChecks(backend, dtype)) record(r);
    for (const r of await gemvChecks(backend, dtype)) record(r);
  }
  for (const r of await largeCopyChecks(backend)) record(r);
  await runTrainingChecks(backend, record);
  record(await outOfMemoryCheck(backend));
  await backend.synchronize();
  const leaked = backend.liveStorages - liveBefore;
  record({ name: 'no storage leaked by the checks', pass: leaked === 0, detail: `${leaked} storage(s) left` });
  return results;
}
