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
 */
import type { DType, KernelName } from '@diff-transformer/core';
import type { ElementBound } from './metrics.js';

/** What a case checks: one kernel, or the model as a whole (full forward, KV-cache decode, generate). */
export type CaseKernel = KernelName | 'model' | 'decode' | 'generate' | 'gradients';

export interface ToleranceRow {
  readonly kernel: CaseKernel;
  /** Only for this backend (e.g. 'webgpu', 'cuda'); absent: every backend. */
  readonly backend?: string;
  /** The dtype the row is for; absent: float32 (also the fallback of a dtype without its own row). */
  readonly dtype?: DType;
  /** Largest NMSE that passes. */
  readonly nmse: number;
  /**
   * Element by element, |a − b| ≤ atol + rtol·|b| must hold (b: the reference). Absent only on rows not
   * calibrated for it yet (the training kernels): no element bound, the NMSE alone decides.
   */
  readonly atol?: number;
  readonly rtol?: number;
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
  // Training (float32). No element bound yet: the float32 double does not compute these kernels, so
  // there is nothing to calibrate one on (see calibration.test.ts).
  { kernel: 'exp', nmse: 1e-9, why: 'one exp per element; GPU fast exp stays below 1e-12' },
  { kernel: 'mul', nmse: 1e-10, why: 'one correctly rounded product per element' },
  { kernel: 'scale', nmse: 1e-10, why: 'a product and a sum per element' },
  { kernel: 'sumSquares', nmse: 1e-9, why: 'one reduction over up to 3·10⁵ squares' },
  { kernel: 'swigluBackward', nmse: 1e-9, why: 'a sigmoid and a few products per element' },
  { kernel: 'rmsNormBackward', nmse: 1e-9, why: 'two reductions per row, one over rows for dWeight' },
  { kernel: 'embeddingBackward', nmse: 1e-10, why: 'sums of the rows of repeated ids' },
  { kernel: 'crossEntropy', nmse: 1e-9, why: 'exp and a sum over ≤ 1031 logits per row' },
  { kernel: 'adamw', nmse: 1e-9, why: 'a square root and a quotient per element' },
  { kernel: 'attentionWithStatistics', nmse: 1e-9, why: 'as attention; the log-sum-exp is one log of a sum' },
  { kernel: 'diffAttentionWithStatistics', nmse: 1e-9, why: 'as diffAttention, and each map on its own' },
  { kernel: 'attentionBackward', nmse: 1e-8, why: 'recomputed probabilities and P ⊙ (dP − D), which cancels' },
  { kernel: 'diffAttentionBackward', nmse: 1e-8, why: 'as attentionBackward for two maps, and the norm backward' },
  { kernel: 'gradients', nmse: 1e-7, why: 'every parameter gradient of ≤ 3 float32 layers and the loss' },

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

  // Per-backend rows go here when a backend has a documented reason, e.g.
  //   { kernel: 'matmul', backend: 'cuda', nmse: 1e-6, atol: 1e-2, rtol: 1e-3, why: 'TF32 tensor cores round ...' }
];

/**
 * The row that decides a threshold. Rows apply to their dtype (float32 when they name none); among the
 * rows of the kernel and dtype, one naming the backend beats the default. A dtype without rows of its
 * own for the kernel uses the float32 rows (copies stay exact in every dtype).
 */
export function toleranceRow(
  kernel: CaseKernel,
  backend: string,
  dtype: DType = 'float32',
  table: readonly ToleranceRow[] = TOLERANCES,
): ToleranceRow {
  const rows = table.filter(
    (row) =>
      row.kernel === kernel &&
      (row.dtype ?? 'float32') === dtype &&
      (row.backend === undefined || row.backend === backend),
  );
  const found = rows.find((row) => row.backend !== undefined) ?? rows[0];
  if (found) return found;
  if (dtype !== 'float32') return toleranceRow(kernel, backend, 'float32', table);
  throw new Error(`no tolerance for kernel '${kernel}' on backend '${backend}'`);
}

/** The NMSE threshold for a kernel on a backend at a dtype (the row's `nmse`). */
export function toleranceFor(
  kernel: CaseKernel,
  backend: string,
  dtype: DType = 'float32',
  table: readonly ToleranceRow[] = TOLERANCES,
): number {
  return toleranceRow(kernel, backend, dtype, table).nmse;
}

/** What a row without an element bound stands for: no element can exceed atol = ∞. */
export const NO_ELEMENT_BOUND: ElementBound = { atol: Number.POSITIVE_INFINITY, rtol: 0 };

/**
 * The element bound for a kernel on a backend at a dtype: |a − b| ≤ atol + rtol·|b| (NO_ELEMENT_BOUND
 * for a row not calibrated for one).
 */
export function elementBoundFor(
  kernel: CaseKernel,
  backend: string,
  dtype: DType = 'float32',
  table: readonly ToleranceRow[] = TOLERANCES,
): ElementBound {
  const { atol, rtol } = toleranceRow(kernel, backend, dtype, table);
  return atol === undefined || rtol === undefined ? NO_ELEMENT_BOUND : { atol, rtol };
}
