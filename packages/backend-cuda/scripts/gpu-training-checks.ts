/**
 * GPU checks of the training kernels, beyond the shared conformance suite (which runs every training case in
 * float32, float16 and bfloat16): the attention backward at sizes the suite does not reach (several key and
 * query tiles, GQA, both key layouts, per-token λ, statistics from the tensor-core forward and from the SIMT
 * one), and determinism (two runs of every kernel that reduces give the same bits).
 *
 * Part of runGpuChecks (scripts/gpu-checks.ts): test/backend.test.ts on a GPU, and dist-gpu/gpu-check.js in the
 * GPU session.
 */
import { compare, reference, toleranceFor } from '@diff-transformer/conformance';
import { createRandom, type DType, ops, type Tensor, tensor, tidy } from '@diff-transformer/core';
import type { CudaBackend } from '../src/backend.js';
import { type AttentionCase, type CheckResult, type FloatDType, upload } from './gpu-checks.js';

/** An attention case of the forward checks, here always with its kind said (DIFF or standard). */
type BackwardCase = AttentionCase & { diff: boolean };

const BACKWARD_CASES: BackwardCase[] = [
  {
    label: 'v1 d64/128 H4 Hkv2 T300 causal subln (10 key tiles)',
    diff: true,
    batch: 1,
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
    label: 'v2 d64/64 shared keys per-token λ T130 non-causal keyLength 150 of 160',
    diff: true,
    batch: 2,
    tokens: 130,
    keys: 160,
    heads: 2,
    kvHeads: 1,
    dk: 64,
    dv: 64,
    shared: true,
    perToken: true,
    causal: false,
    keyLength: 150,
    norm: false,
  },
  {
    label: 'v1 d128/256 T70 chunk keyOffset 30 keyLength 100 of 110 (tile 16)',
    diff: true,
    batch: 1,
    tokens: 70,
    keys: 110,
    heads: 2,
    kvHeads: 2,
    dk: 128,
    dv: 256,
    shared: false,
    perToken: false,
    causal: true,
    keyOffset: 30,
    keyLength: 100,
    norm: true,
  },
  {
    label: 'attention d64/64 H8 Hkv2 T257 causal',
    diff: false,
    batch: 1,
    tokens: 257,
    keys: 257,
    heads: 8,
    kvHeads: 2,
    dk: 64,
    dv: 64,
    shared: true,
    perToken: false,
    causal: true,
    norm: false,
  },
];

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function judge(
  name: string,
  kernel: 'diffAttentionBackward' | 'attentionBackward' | 'diffAttentionWithStatistics',
  dtype: FloatDType,
  pairs: Array<[string, ArrayLike<number>, ArrayLike<number>]>,
): CheckResult {
  const tolerance = toleranceFor(kernel, 'cuda', dtype as DType);
  let worst = 0;
  const details: string[] = [];
  let finite = true;
  for (const [label, actual, expected] of pairs) {
    const c = compare(actual, expected);
    finite &&= c.nonFinite === 0;
    worst = Math.max(worst, c.nmse);
    details.push(`${label} ${c.nmse.toExponential(1)}`);
  }
  return { name, pass: finite && worst <= tolerance, nmse: worst, tolerance, detail: details.join(', ') };
}

async function backwardCheck(backend: CudaBackend, spec: BackwardCase, dtype: FloatDType): Promise<CheckResult[]> {
  const random = createRandom(spec.tokens * 104729 + spec.dv);
  const keyLength = spec.keyLength ?? spec.keys;
  const mask = { causal: spec.causal, keyOffset: spec.keyOffset ?? 0, keyLength, scale: 1 / Math.sqrt(spec.dk) };
  const qHeads = spec.diff ? 2 * spec.heads : spec.heads;
  const keyHeads = spec.diff && !spec.shared ? 2 * spec.kvHeads : spec.kvHeads;
  const shapes = {
    q: [spec.batch, spec.tokens, qHeads, spec.dk],
    k: [spec.batch, spec.keys, keyHeads, spec.dk],
    v: [spec.batch, spec.keys, spec.kvHeads, spec.dv],
    out: [spec.batch, spec.tokens, spec.heads, spec.dv],
    lambda: spec.perToken ? [spec.batch, spec.tokens, spec.heads] : [spec.heads],
  };
  const normal = (shape: number[]) => Float32Array.from({ length: size(shape) }, () => random.normal());
  const owned: Tensor[] = [];
  try {
    const q = await upload(backend, normal(shapes.q), shapes.q, dtype);
    const k = await upload(backend, normal(shapes.k), shapes.k, dtype);
    const v = await upload(backend, normal(shapes.v), shapes.v, dtype);
    const dOut = await upload(backend, normal(shapes.out), shapes.out, dtype);
    owned.push(q.t, k.t, v.t, dOut.t);
    const label = `${spec.diff ? 'diffAttentionBackward' : 'attentionBackward'} ${dtype} ${spec.label}`;
    if (!spec.diff) {
      const g = tidy(() => {
        const { output, statistics } = ops.attentionWithStatistics(q.t, k.t, v.t, mask);
        return ops.attentionBackward(q.t, k.t, v.t, output, statistics.logSumExp, dOut.t, mask);
      });
      owned.push(g.dq, g.dk, g.dv);
      const want = reference.attentionBackward(q.ref, k.ref, v.ref, dOut.ref, mask);
      return [
        judge(label, 'attentionBackward', dtype, [
          ['dq', await g.dq.data(), want.dq.data],
          ['dk', await g.dk.data(), want.dk.data],
          ['dv', await g.dv.data(), want.dv.data],
        ]),
      ];
    }
    const lambdaValues = Float32Array.from({ length: size(shapes.lambda) }, () => 1.6 * random.next() - 0.3);
    const lambda = await upload(backend, lambdaValues, shapes.lambda, dtype);
    const weightValues = Float32Array.from({ length: spec.dv }, () => 1 + 0.3 * random.normal());
    const weight = await upload(backend, weightValues, [spec.dv], dtype);
    owned.push(lambda.t, weight.t);
    const norm = spec.norm ? { eps: 1e-5, outputScale: 0.8 } : null;
    const options = { ...mask, norm: norm && { ...norm, weight: weight.t } };
    const want = reference.diffAttentionBackward(q.ref, k.ref, v.ref, lambda.ref, weight.ref, dOut.ref, {
      ...mask,
      norm,
    });
    const stats = reference.diffAttentionWithStatistics(q.ref, k.ref, v.ref, lambda.ref, weight.ref, {
      ...mask,
      norm,
    });
    const results: CheckResult[] = [];
    // Statistics from the path the forward takes (tensor cores where it applies) and from the SIMT kernel.
    for (const path of ['auto', 'simt'] as const) {
      backend.setAttentionPath(path);
      const kernel = path === 'simt' ? 'rows' : backend.attentionPath(q.t, k.t, v.t, true);
      const forward = tidy(() => ops.diffAttentionWithStatistics(q.t, k.t, v.t, lambda.t, options));
      owned.push(forward.output, forward.statistics.logSumExp, forward.statistics.mapOutputs!);
      backend.setAttentionPath('auto');
      results.push(
        judge(`diffAttentionWithStatistics ${dtype} ${spec.label} [${kernel}]`, 'diffAttentionWithStatistics', dtype, [
          ['output', await forward.output.data(), stats.output.data],
          ['logSumExp', await forward.statistics.logSumExp.data(), stats.logSumExp.data],
          ['mapOutputs', await forward.statistics.mapOutputs!.data(), stats.mapOutputs.data],
        ]),
      );
      const g = tidy(() => ops.diffAttentionBackward(q.t, k.t, v.t, lambda.t, forward.statistics, dOut.t, options));
      owned.push(g.dq, g.dk, g.dv, g.dLambda);
      if (g.dNormWeight) owned.push(g.dNormWeight);
      const pairs: Array<[string, ArrayLike<number>, ArrayLike<number>]> = [
        ['dq', await g.dq.data(), want.dq.data],
        ['dk', await g.dk.data(), want.dk.data],
        ['dv', await g.dv.data(), want.dv.data],
        ['dλ', await g.dLambda.data(), want.dLambda.data],
      ];
      if (want.dNormWeight && g.dNormWeight) pairs.push(['dW', await g.dNormWeight.data(), want.dNormWeight.data]);
      results.push(judge(`${label} [statistics from ${kernel}]`, 'diffAttentionBackward', dtype, pairs));
    }
    return results;
  } finally {
    backend.setAttentionPath('auto');
    for (const t of owned) t.dispose();
  }
}

/** Runs `make` twice and compares the bits of what it returns. */
async function sameBits(name: string, make: () => Tensor[]): Promise<CheckResult> {
  const read = async () => {
    const outputs = make();
    const data = await Promise.all(outputs.map((t) => t.data()));
    for (const t of outputs) t.dispose();
    return data.map((d) => new Uint32Array(Float32Array.from(d).buffer));
  };
  const [a, b] = [await read(), await read()];
  const differing = a.reduce((n, x, i) => n + x.filter((bits, j) => bits !== b[i][j]).length, 0);
  return { name: `deterministic: ${name}`, pass: differing === 0, detail: `${differing} element(s) differ` };
}

async function determinismChecks(backend: CudaBackend): Promise<CheckResult[]> {
  const random = createRandom(7);
  const normal = (n: number) => Float32Array.from({ length: n }, () => random.normal());
  const owned: Tensor[] = [];
  const t = (values: ArrayLike<number>, shape: number[], dtype: FloatDType | 'int32' = 'float32') => {
    const x = tensor(dtype === 'int32' ? Int32Array.from(values) : values, shape, { backend, dtype });
    owned.push(x);
    return x;
  };
  try {
    const results: CheckResult[] = [];
    const [B, T, H, dk] = [2, 200, 4, 64];
    const q = t(normal(B * T * 2 * H * dk), [B, T, 2 * H, dk], 'bfloat16');
    const k = t(normal(B * T * 2 * dk), [B, T, 2, dk], 'bfloat16');
    const v = t(normal(B * T * 2 * dk), [B, T, 1, 2 * dk], 'bfloat16');
    const lambda = t([0.3, 0.5, -0.2, 0.9], [H], 'bfloat16');
    const weight = t(normal(2 * dk), [2 * dk], 'bfloat16');
    const dOut = t(normal(B * T * H * 2 * dk), [B, T, H, 2 * dk], 'bfloat16');
    const options = { norm: { weight, eps: 1e-5, outputScale: 0.8 } };
    results.push(
      await sameBits('diffAttentionBackward bfloat16 B2 T200 H4 Hkv1 d64/128', () =>
        tidy(() => {
          const { statistics } = ops.diffAttentionWithStatistics(q, k, v, lambda, options);
          const g = ops.diffAttentionBackward(q, k, v, lambda, statistics, dOut, options);
          return [g.dq, g.dk, g.dv, g.dLambda, g.dNormWeight!];
        }),
      ),
    );
    const ids = t(
      Array.from({ length: 4096 }, () => Math.floor(random.next() * 50)),
      [4096],
      'int32',
    );
    const dy = t(normal(4096 * 96), [4096, 96]);
    results.push(await sameBits('embeddingBackward 4096 ids of 50 rows', () => [ops.embeddingBackward(ids, dy, 50)]));
    const x = t(normal(1_000_003), [1_000_003]);
    results.push(await sameBits('sumSquares of 10⁶ elements', () => [ops.sumSquares(x)]));
    const rows = t(normal(5000 * 128), [5000, 128]);
    const rowsWeight = t(normal(128), [128]);
    const rowsDy = t(normal(5000 * 128), [5000, 128]);
    results.push(
      await sameBits('rmsNormBackward dWeight over 5000 rows', () => {
        const g = ops.rmsNormBackward(rows, rowsWeight, rowsDy, 1e-5);
        return [g.dx, g.dWeight!];
      }),
    );
    const logits = t(normal(512 * 5000), [512, 5000]);
    const targets = t(
      Array.from({ length: 512 }, () => Math.floor(random.next() * 5000)),
      [512],
      'int32',
    );
    results.push(
      await sameBits('crossEntropy 512 rows of 5000', () => {
        const r = ops.crossEntropyWithGradient(logits, targets, { scale: 1 / 512 });
        return [r.loss, r.dLogits];
      }),
    );
    return results;
  } finally {
    for (const x of owned) x.dispose();
  }
}

/** The training checks, one result each. */
export async function runTrainingChecks(backend: CudaBackend, record: (r: CheckResult) => void): Promise<void> {
  for (const dtype of ['float32', 'bfloat16'] as const) {
    for (const spec of BACKWARD_CASES) for (const r of await backwardCheck(backend, spec, dtype)) record(r);
  }
  for (const r of await determinismChecks(backend)) record(r);
}
