/**
 * The one table of thresholds. A case looks its row up by kernel, backend and dtype (see toleranceRow),
 * so a backend that is legitimately less precise (a WGSL exp, TF32 tensor cores) gets its own row here
 * instead of a looser suite for everyone. A row holds two gates, and a case must pass both:
 *
 *   NMSE = Σ(a − b)²/Σb² ≤ nmse               the error over the whole output
 *   |a − b| ≤ atol + rtol·|b| for every element   no single element far off (torch.testing, burn)
 *
 * The NMSE alone lets one element go: a kernel that doubles its last output element passes the NMSE
 * rows of most half-precision cases (its error is one element's size among thousands).
 *
 * Calibration. The package's tests run the suite on a test double that rounds every product, sum, exp
 * and quotient to float32 (Math.fround) with in-order accumulation and streaming softmax, i.e. worse
 * than a GPU kernel with FMA and tree reductions. Its worst NMSE per kernel: elementwise ≤ 6e-15,
 * softmax 5e-14, matmul 4e-14 (K = 129), attention 7e-14, whole-model logits 5e-13. The float32 rows
 * below sit at least 10⁴ times higher. What must fail sits far above them: one wrong element among
 * the 16 641 outputs of the largest case is an NMSE of ~6e-5 when it is off by its own size, and a
 * missing scale, a flipped λ, a wrong GQA group or a wrong λinit moves whole heads (1e-3 to 1). Copies,
 * gathers and argmax have no round-off at all and must match exactly; so must token ids.
 *
 * float16 / bfloat16 (float32 compute, rounded storage): the same double, rounding every stored value,
 * measures ~5e-8 / ~4e-6 for one rounded output. The rows leave 10 to 20 times that for elementwise
 * kernels (room for one rounded intermediate) and more where a device may round partial sums or
 * probabilities (matmul, attention), or where the difference of two maps cancels (diffAttention).
 * Inputs are compared as the backend stores them, so input rounding costs nothing.
 *
 * Element bounds, from the maxAbsError of the same runs. float32: the double's worst element is
 * 1.5e-5 off in the default cases (matmul, K = 129, outputs up to 48) and every other kernel's below
 * 5e-6; the cpu engines and WebGPU (SwiftShader) measure the same or less. atol = rtol = 1e-4 leaves at
 * least 20 times that, and catches one element off by 1e-4, where the NMSE gate needs ~4e-2. matmul
 * has atol 1e-3: summed in order over K = 1000 (the large GEMV cases), the double and the cpu engine's
 * GEMV are 1.3e-4 off, 8 times below it. float16 / bfloat16: the double's error is the output's rounding,
 * at most u·|b| with the unit roundoff u (2⁻¹¹, 2⁻⁸): it passes rtol = u with atol ≤ 6e-6. The rows
 * allow k·u in both atol and rtol: k = 4 for elementwise kernels (the output's rounding and room for
 * three more), 8 for matmul and attention (rounded partial sums or probabilities), 16 for diffAttention
 * (two maps, and a norm that amplifies where they cancel), about the room the NMSE rows leave in error
 * terms (their square roots: 4.5 to 5, 5 to 14, 22 to 45). atol equal to rtol is room for intermediates
 * larger than the output (a rotary pair that cancels, attention outputs near 0); softmax and sigmoid
 * only have relative error (exp and a quotient), so their atol is 2⁻²⁰. Doubling an element b is then
 * caught wherever |b| > atol/(1 − rtol): above 1e-4 in float32 (1e-3 matmul, 1e-6 softmax and sigmoid), and in
 * half precision above 2e-3 to 8e-3 (float16) or 1.6e-2 to 6.7e-2 (bfloat16).
 *
 * Training, from the same double computing every training kernel (its attention backward streams keys
 * and recomputes probabilities from a float32 log-sum-exp, as FlashAttention-2 does). Its worst NMSE:
 * exp, mul, scale ≤ 1e-15; crossEntropy, adamw, sumSquares, the backward of swiglu, rmsNorm and
 * embedding ≤ 2e-13; the attention backward 1.5e-12; whole-model gradients 1e-11. The rows sit 1.6·10³
 * (embeddingBackward) to 10⁶ times higher, and the same element bounds hold with 20 times to spare
 * (rmsNormBackward's atol is 1e-3, matmul's: dWeight sums 515 rows in order). In half precision the
 * double's worst element is the output's rounding (≤ 1.0u) but in attentionBackward (2.9u: D = dO · O
 * from the rounded output cancels against dP): k = 4 for the elementwise kernels, 8 and 16 for the
 * statistics (as attention and diffAttention), 16 for attentionBackward, 8 for diffAttentionBackward
 * (its D comes from float32 map outputs; room for rounded probabilities). The backward at scores of
 * ±1e4 has its own rows, derived from float32's resolution at that magnitude (the 'large scores' rows).
 * The per-op gradients (a rule and the kernels it calls, against float64): the double's worst NMSE
 * 5e-13, its worst element 6.4e-3 of the bound; the row sits 2·10⁴ times higher.
 */
import type { DType, KernelName } from '@diff-transformer/core';
import type { ElementBound } from './metrics.js';

/** What a case checks: one kernel, or the model as a whole (full forward, KV-cache decode, generate). */
export type CaseKernel = KernelName | 'model' | 'decode' | 'generate' | 'gradients' | 'opGradient';

/**
 * A documented exception for cases that are ill-conditioned by construction and say so
 * (ConformanceCase.variant): 'large scores' is the backward at scores of ±1e4, whose gradients carry
 * the float32 resolution of the log-sum-exp at that magnitude (see the rows).
 */
export type ToleranceVariant = 'large scores';

export interface ToleranceRow {
  readonly kernel: CaseKernel;
  /** Only for the cases of this variant; absent: every other case of the kernel. */
  readonly variant?: ToleranceVariant;
  /** Only for this backend (e.g. 'webgpu', 'cuda'); absent: every backend. */
  readonly backend?: string;
  /** The dtype the row is for; absent: float32 (also the fallback of a dtype without its own row). */
  readonly dtype?: DType;
  /** Largest NMSE that passes. */
  readonly nmse: number;
  /** Element by element, |a − b| ≤ atol + rtol·|b| must hold (b: the reference). */
  readonly atol: number;
  readonly rtol: number;
  /** Why this value. */
  readonly why: string;
}

const EXACT = 'copies, gathers and argmax involve no arithmetic: any difference is a bug';

/** Unit roundoff of each storage type: rounding a value to it moves it by at most u·|value|. */
const U16 = 2 ** -11;
const UBF16 = 2 ** -8;
/** The float32 element bound of the kernels with arithmetic but matmul (see the calibration above). */
const F32 = { atol: 1e-4, rtol: 1e-4 } as const;
/** softmax and sigmoid: exp and a quotient have relative error only, so atol stays tiny. */
const RELATIVE_ATOL = 2 ** -20;

/** The half-precision element bound k·u: k = 4 elementwise, 8 matmul and attention, 16 diffAttention. */
const half = (u: number, k: number) => ({ atol: k * u, rtol: k * u });
const relative = (u: number, k: number) => ({ atol: RELATIVE_ATOL, rtol: k * u });

/**
 * The training kernels in float16 and bfloat16, from the same double: its worst element in units of u
 * (a fraction of u·(1 + |b|)) in brackets; k is four times that or more, as for the inference rows, and
 * the NMSE rows are float16's and bfloat16's. sumSquares (a float32 output) keeps its float32 row;
 * gradients run in float32 only.
 */
const HALF_TRAINING: ReadonlyArray<{
  readonly kernel: CaseKernel;
  readonly variant?: ToleranceVariant;
  readonly k: number;
  /** exp: relative error only, atol 2^−20 as softmax and sigmoid. */
  readonly relative?: boolean;
  readonly nmse: readonly [float16: number, bfloat16: number];
  readonly why: string;
}> = [
  { kernel: 'exp', k: 4, relative: true, nmse: [1e-6, 1e-4], why: 'a rounded output (0.9u); relative error only' },
  { kernel: 'mul', k: 4, nmse: [1e-6, 1e-4], why: 'a rounded output (0.9u)' },
  { kernel: 'scale', k: 4, nmse: [1e-6, 1e-4], why: 'a rounded output (0.5u)' },
  { kernel: 'swigluBackward', k: 4, nmse: [1e-6, 1e-4], why: 'rounded outputs (0.8u)' },
  { kernel: 'rmsNormBackward', k: 4, nmse: [1e-6, 1e-4], why: 'rounded outputs (1.0u)' },
  { kernel: 'embeddingBackward', k: 4, nmse: [1e-6, 1e-4], why: 'a rounded sum (0.9u)' },
  { kernel: 'crossEntropy', k: 4, nmse: [1e-6, 1e-4], why: 'a rounded gradient, a float32 loss (0.2u)' },
  { kernel: 'adamw', k: 4, nmse: [1e-6, 1e-4], why: 'a rounded parameter, float32 moments (0.6u)' },
  { kernel: 'attentionWithStatistics', k: 8, nmse: [1e-5, 5e-4], why: 'as attention; float32 statistics (0.8u)' },
  {
    kernel: 'diffAttentionWithStatistics',
    k: 16,
    nmse: [1e-4, 2e-3],
    why: 'as diffAttention; float32 statistics (0.8u)',
  },
  {
    kernel: 'attentionBackward',
    k: 16,
    nmse: [1e-5, 5e-4],
    why: 'D = dO · O from the rounded output cancels against dP (2.9u)',
  },
  {
    kernel: 'diffAttentionBackward',
    k: 8,
    nmse: [1e-5, 5e-4],
    why: 'rounded gradients of float32 map outputs (0.8u), and room for rounded probabilities',
  },
  // Scores of ±1e4: k = 16 (above the float32 variant's 2^−9), atol × 2^10 as every dq and dk carries scale.
  {
    kernel: 'attentionBackward',
    variant: 'large scores',
    k: 16,
    nmse: [1e-5, 5e-4],
    why: 'as attentionBackward, at gradients 2^10 times larger (0.2 of the bound)',
  },
  {
    kernel: 'diffAttentionBackward',
    variant: 'large scores',
    k: 16,
    nmse: [1e-5, 5e-4],
    why: 'as attentionBackward, at gradients 2^10 times larger (0.1 of the bound)',
  },
];

function halfTrainingRows(dtype: 'float16' | 'bfloat16'): ToleranceRow[] {
  const u = dtype === 'float16' ? U16 : UBF16;
  return HALF_TRAINING.map(({ kernel, variant, k, relative: relativeOnly, nmse, why }) => {
    const bound = relativeOnly ? relative(u, k) : half(u, k);
    return {
      kernel,
      ...(variant ? { variant } : {}),
      dtype,
      nmse: nmse[dtype === 'float16' ? 0 : 1],
      atol: variant ? bound.atol * 2 ** 10 : bound.atol,
      rtol: bound.rtol,
      why,
    };
  });
}

export const TOLERANCES: readonly ToleranceRow[] = [
  // float32 defaults, one per kernel (measured worst case of a float32 double in brackets).
  {
    kernel: 'matmul',
    nmse: 1e-9,
    atol: 1e-3,
    rtol: F32.rtol,
    why: 'float32 accumulation over K ≤ 1000 terms (4e-13; element 1.3e-4 in order over K = 1000)',
  },
  { kernel: 'embedding', nmse: 0, atol: 0, rtol: 0, why: EXACT },
  { kernel: 'rmsNorm', nmse: 1e-9, ...F32, why: 'one reduction and a square root (6e-15)' },
  { kernel: 'rotary', nmse: 1e-9, ...F32, why: 'two products and a sum per element (2e-15)' },
  { kernel: 'swiglu', nmse: 1e-9, ...F32, why: 'one exp per element (4e-15); GPU fast exp stays below 1e-12' },
  { kernel: 'add', nmse: 1e-10, ...F32, why: 'one correctly rounded addition per element (7e-16)' },
  {
    kernel: 'sigmoid',
    nmse: 1e-9,
    atol: 1e-6,
    rtol: F32.rtol,
    why: 'one exp per element (2e-15); GPU fast exp stays below 1e-12; relative error only',
  },
  {
    kernel: 'diffAttention',
    nmse: 1e-9,
    ...F32,
    why: 'two online softmaxes, a difference and an RMSNorm (7e-14; element 2e-6)',
  },
  { kernel: 'attention', nmse: 1e-9, ...F32, why: 'online softmax over ≤ 129 keys (6e-14)' },
  {
    kernel: 'softmax',
    nmse: 1e-9,
    atol: 1e-6,
    rtol: F32.rtol,
    why: 'exp and a sum over ≤ 129 values (5e-14); relative error only',
  },
  { kernel: 'argmax', nmse: 0, atol: 0, rtol: 0, why: EXACT },
  { kernel: 'narrow', nmse: 0, atol: 0, rtol: 0, why: EXACT },
  { kernel: 'cacheWrite', nmse: 0, atol: 0, rtol: 0, why: EXACT },
  {
    kernel: 'model',
    nmse: 1e-8,
    ...F32,
    why: 'logits after ≤ 3 float32 layers (4e-13); a wrong λinit or norm weight moves them by > 1e-3',
  },
  {
    kernel: 'decode',
    nmse: 1e-8,
    ...F32,
    why: 'cached decoding must match the full forward as closely as the model does (5e-13)',
  },
  { kernel: 'generate', nmse: 0, atol: 0, rtol: 0, why: 'token ids are compared exactly' },
  // Training (float32), calibrated the same way (test/float32-training.ts).
  {
    kernel: 'exp',
    nmse: 1e-9,
    atol: 1e-6,
    rtol: F32.rtol,
    why: 'one exp per element (6e-16); relative error only',
  },
  { kernel: 'mul', nmse: 1e-10, ...F32, why: 'one correctly rounded product per element (6e-16)' },
  { kernel: 'scale', nmse: 1e-10, ...F32, why: 'a product and a sum per element (1e-15)' },
  {
    kernel: 'sumSquares',
    nmse: 1e-9,
    ...F32,
    why: 'up to 3·10⁵ squares, in blocks (5e-14); one running float32 sum over all of them is 1e-9 off',
  },
  { kernel: 'swigluBackward', nmse: 1e-9, ...F32, why: 'a sigmoid and a few products per element (8e-14)' },
  {
    kernel: 'rmsNormBackward',
    nmse: 1e-9,
    atol: 1e-3,
    rtol: F32.rtol,
    why: 'two reductions per row, dWeight summed over ≤ 515 rows in order (2e-13; element 3e-5 at |b| ≈ 20)',
  },
  { kernel: 'embeddingBackward', nmse: 1e-10, ...F32, why: 'sums of ≤ 260 rows of one id, in order (6e-14)' },
  { kernel: 'crossEntropy', nmse: 1e-9, ...F32, why: 'exp and a sum over ≤ 1031 logits per row (2e-14)' },
  { kernel: 'adamw', nmse: 1e-9, ...F32, why: 'a square root and a quotient per element (5e-14)' },
  {
    kernel: 'attentionWithStatistics',
    nmse: 1e-9,
    ...F32,
    why: 'as attention; the log-sum-exp is one log of a sum (5e-14)',
  },
  {
    kernel: 'diffAttentionWithStatistics',
    nmse: 1e-9,
    ...F32,
    why: 'as diffAttention, and each map on its own (8e-14)',
  },
  {
    kernel: 'attentionBackward',
    nmse: 1e-8,
    ...F32,
    why: 'recomputed probabilities and P ⊙ (dP − D), which cancels (3e-13; element 7e-6)',
  },
  {
    kernel: 'diffAttentionBackward',
    nmse: 1e-8,
    ...F32,
    why: 'as attentionBackward for two maps, and the norm backward (1.5e-12; element 1.6e-5)',
  },
  {
    kernel: 'gradients',
    nmse: 1e-7,
    ...F32,
    why: 'every parameter gradient of ≤ 3 float32 layers and the loss (1e-11; element 8e-7)',
  },
  {
    kernel: 'opGradient',
    nmse: 1e-8,
    ...F32,
    why: 'one op’s rule through its backward kernels, against float64 (calibrated in calibration.test.ts)',
  },
  // The backward at scores of ±1e4 (cases/attention-backward.ts): exact scores on a grid, each row's top
  // keys tied. What remains is the float32 resolution at |S| < 2^14: a value of that size rounds by up to
  // 2^−11, and an error ε in a row's log-sum-exp scales every probability of the row, and every gradient
  // term, by e^−ε. rtol allows four such roundings (the log-sum-exp, a log2-scaled score and log-sum-exp,
  // a conversion): 2^−9. dk and dv add rows whose log-sum-exp rounds differently (maxima in different
  // binades), so where those terms cancel an element is off by up to rtol times their sizes: atol 8, at
  // gradients of 10² to 10⁴ (every dq and dk carries scale = 2^10). The double and both cpu engines: one
  // rounding, 2.1e-4 relative everywhere (ln 2 on the 2^−10 grid of |S| ∈ [2^13, 2^14)), NMSE 4e-8, the
  // worst element 0.9 off at |b| = 60.
  {
    kernel: 'attentionBackward',
    variant: 'large scores',
    nmse: 1e-6,
    atol: 8,
    rtol: 2 ** -9,
    why: 'the float32 resolution of a log-sum-exp of |S| < 2^14, times the gradients (4e-8; element 0.9)',
  },
  {
    kernel: 'diffAttentionBackward',
    variant: 'large scores',
    nmse: 1e-6,
    atol: 8,
    rtol: 2 ** -9,
    why: 'the float32 resolution of a log-sum-exp of |S| < 2^14, times the gradients (4e-8; element 0.9)',
  },

  // float16 storage, float32 compute: 11 significant bits per stored value (one rounding ≈ 5e-8).
  {
    kernel: 'matmul',
    dtype: 'float16',
    nmse: 1e-5,
    ...half(U16, 8),
    why: 'a rounded output, and room for float16 partial sums',
  },
  { kernel: 'rmsNorm', dtype: 'float16', nmse: 1e-6, ...half(U16, 4), why: 'a rounded output (5e-8)' },
  { kernel: 'rotary', dtype: 'float16', nmse: 1e-6, ...half(U16, 4), why: 'a rounded output (5e-8)' },
  { kernel: 'swiglu', dtype: 'float16', nmse: 1e-6, ...half(U16, 4), why: 'a rounded output (7e-8)' },
  { kernel: 'add', dtype: 'float16', nmse: 1e-6, ...half(U16, 4), why: 'a rounded output (5e-8)' },
  { kernel: 'sigmoid', dtype: 'float16', nmse: 1e-6, ...relative(U16, 4), why: 'a rounded output (4e-8)' },
  { kernel: 'softmax', dtype: 'float16', nmse: 1e-6, ...relative(U16, 4), why: 'a rounded output (5e-8)' },
  {
    kernel: 'attention',
    dtype: 'float16',
    nmse: 1e-5,
    ...half(U16, 8),
    why: 'a rounded output, and room for float16 probabilities',
  },
  {
    kernel: 'diffAttention',
    dtype: 'float16',
    nmse: 1e-4,
    ...half(U16, 16),
    why: 'as attention, amplified where the two maps cancel before the norm',
  },
  ...halfTrainingRows('float16'),

  // bfloat16 storage, float32 compute: 8 significant bits per stored value (one rounding ≈ 4e-6).
  {
    kernel: 'matmul',
    dtype: 'bfloat16',
    nmse: 1e-4,
    ...half(UBF16, 8),
    why: 'a rounded output, and room for bfloat16 partial sums',
  },
  { kernel: 'rmsNorm', dtype: 'bfloat16', nmse: 1e-4, ...half(UBF16, 4), why: 'a rounded output (3e-6)' },
  { kernel: 'rotary', dtype: 'bfloat16', nmse: 1e-4, ...half(UBF16, 4), why: 'a rounded output (3e-6)' },
  { kernel: 'swiglu', dtype: 'bfloat16', nmse: 1e-4, ...half(UBF16, 4), why: 'a rounded output (4e-6)' },
  { kernel: 'add', dtype: 'bfloat16', nmse: 1e-4, ...half(UBF16, 4), why: 'a rounded output (3e-6)' },
  { kernel: 'sigmoid', dtype: 'bfloat16', nmse: 1e-4, ...relative(UBF16, 4), why: 'a rounded output (2e-6)' },
  { kernel: 'softmax', dtype: 'bfloat16', nmse: 1e-4, ...relative(UBF16, 4), why: 'a rounded output (2e-6)' },
  {
    kernel: 'attention',
    dtype: 'bfloat16',
    nmse: 5e-4,
    ...half(UBF16, 8),
    why: 'a rounded output, and room for bfloat16 probabilities',
  },
  {
    kernel: 'diffAttention',
    dtype: 'bfloat16',
    nmse: 2e-3,
    ...half(UBF16, 16),
    why: 'as attention, amplified where the two maps cancel before the norm',
  },
  ...halfTrainingRows('bfloat16'),

  // Per-backend rows go here when a backend has a documented reason, e.g.
  //   { kernel: 'matmul', backend: 'cuda', nmse: 1e-6, atol: 1e-2, rtol: 1e-3, why: 'TF32 tensor cores round ...' }
];

/**
 * The row that decides a threshold. Rows apply to their dtype (float32 when they name none) and to the
 * cases of their variant (none when they name none); among the rows of the kernel, variant and dtype,
 * one naming the backend beats the default. A dtype without rows of its own for the kernel and variant
 * uses the float32 rows (copies stay exact in every dtype).
 */
export function toleranceRow(
  kernel: CaseKernel,
  backend: string,
  dtype: DType = 'float32',
  table: readonly ToleranceRow[] = TOLERANCES,
  variant?: ToleranceVariant,
): ToleranceRow {
  const rows = table.filter(
    (row) =>
      row.kernel === kernel &&
      row.variant === variant &&
      (row.dtype ?? 'float32') === dtype &&
      (row.backend === undefined || row.backend === backend),
  );
  const found = rows.find((row) => row.backend !== undefined) ?? rows[0];
  if (found) return found;
  if (dtype !== 'float32') return toleranceRow(kernel, backend, 'float32', table, variant);
  const which = variant ? ` (variant '${variant}')` : '';
  throw new Error(`no tolerance for kernel '${kernel}'${which} on backend '${backend}'`);
}

/** The NMSE threshold for a kernel on a backend at a dtype (the row's `nmse`). */
export function toleranceFor(
  kernel: CaseKernel,
  backend: string,
  dtype: DType = 'float32',
  table: readonly ToleranceRow[] = TOLERANCES,
  variant?: ToleranceVariant,
): number {
  return toleranceRow(kernel, backend, dtype, table, variant).nmse;
}

/**
 * The element bound for a kernel on a backend at a dtype: |a − b| ≤ atol + rtol·|b|.
 */
export function elementBoundFor(
  kernel: CaseKernel,
  backend: string,
  dtype: DType = 'float32',
  table: readonly ToleranceRow[] = TOLERANCES,
  variant?: ToleranceVariant,
): ElementBound {
  const { atol, rtol } = toleranceRow(kernel, backend, dtype, table, variant);
  return { atol, rtol };
}
