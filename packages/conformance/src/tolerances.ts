/**
 * The one table of NMSE thresholds. A case looks its threshold up by kernel, backend and dtype (see
 * toleranceRow), so a backend that is legitimately less precise (a WGSL exp, TF32 tensor cores) gets
 * its own row here instead of a looser suite for everyone.
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
 */
import type { DType, KernelName } from '@diff-transformer/core';

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
  /** Why this value. */
  readonly why: string;
}

const EXACT = 'copies, gathers and argmax involve no arithmetic: any difference is a bug';

export const TOLERANCES: readonly ToleranceRow[] = [
  // float32 defaults, one per kernel (measured worst case of a float32 double in brackets).
  { kernel: 'matmul', nmse: 1e-9, why: 'float32 accumulation over K ≤ 129 terms (4e-14)' },
  { kernel: 'embedding', nmse: 0, why: EXACT },
  { kernel: 'rmsNorm', nmse: 1e-9, why: 'one reduction and a square root (6e-15)' },
  { kernel: 'rotary', nmse: 1e-9, why: 'two products and a sum per element (2e-15)' },
  { kernel: 'swiglu', nmse: 1e-9, why: 'one exp per element (4e-15); GPU fast exp stays below 1e-12' },
  { kernel: 'add', nmse: 1e-10, why: 'one correctly rounded addition per element (7e-16)' },
  { kernel: 'sigmoid', nmse: 1e-9, why: 'one exp per element (2e-15); GPU fast exp stays below 1e-12' },
  { kernel: 'diffAttention', nmse: 1e-9, why: 'two online softmaxes, a difference and an RMSNorm (7e-14)' },
  { kernel: 'attention', nmse: 1e-9, why: 'online softmax over ≤ 129 keys (6e-14)' },
  { kernel: 'softmax', nmse: 1e-9, why: 'exp and a sum over ≤ 129 values (5e-14)' },
  { kernel: 'argmax', nmse: 0, why: EXACT },
  { kernel: 'narrow', nmse: 0, why: EXACT },
  { kernel: 'cacheWrite', nmse: 0, why: EXACT },
  {
    kernel: 'model',
    nmse: 1e-8,
    why: 'logits after ≤ 3 float32 layers (4e-13); a wrong λinit or norm weight moves them by > 1e-3',
  },
  {
    kernel: 'decode',
    nmse: 1e-8,
    why: 'cached decoding must match the full forward as closely as the model does (5e-13)',
  },
  { kernel: 'generate', nmse: 0, why: 'token ids are compared exactly' },
  // Training (float32).
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
  { kernel: 'matmul', dtype: 'float16', nmse: 1e-5, why: 'a rounded output, and room for float16 partial sums' },
  { kernel: 'rmsNorm', dtype: 'float16', nmse: 1e-6, why: 'a rounded output (5e-8)' },
  { kernel: 'rotary', dtype: 'float16', nmse: 1e-6, why: 'a rounded output (5e-8)' },
  { kernel: 'swiglu', dtype: 'float16', nmse: 1e-6, why: 'a rounded output (7e-8)' },
  { kernel: 'add', dtype: 'float16', nmse: 1e-6, why: 'a rounded output (5e-8)' },
  { kernel: 'sigmoid', dtype: 'float16', nmse: 1e-6, why: 'a rounded output (4e-8)' },
  { kernel: 'softmax', dtype: 'float16', nmse: 1e-6, why: 'a rounded output (5e-8)' },
  { kernel: 'attention', dtype: 'float16', nmse: 1e-5, why: 'a rounded output, and room for float16 probabilities' },
  {
    kernel: 'diffAttention',
    dtype: 'float16',
    nmse: 1e-4,
    why: 'as attention, amplified where the two maps cancel before the norm',
  },

  // bfloat16 storage, float32 compute: 8 significant bits per stored value (one rounding ≈ 4e-6).
  { kernel: 'matmul', dtype: 'bfloat16', nmse: 1e-4, why: 'a rounded output, and room for bfloat16 partial sums' },
  { kernel: 'rmsNorm', dtype: 'bfloat16', nmse: 1e-4, why: 'a rounded output (3e-6)' },
  { kernel: 'rotary', dtype: 'bfloat16', nmse: 1e-4, why: 'a rounded output (3e-6)' },
  { kernel: 'swiglu', dtype: 'bfloat16', nmse: 1e-4, why: 'a rounded output (4e-6)' },
  { kernel: 'add', dtype: 'bfloat16', nmse: 1e-4, why: 'a rounded output (3e-6)' },
  { kernel: 'sigmoid', dtype: 'bfloat16', nmse: 1e-4, why: 'a rounded output (2e-6)' },
  { kernel: 'softmax', dtype: 'bfloat16', nmse: 1e-4, why: 'a rounded output (2e-6)' },
  { kernel: 'attention', dtype: 'bfloat16', nmse: 5e-4, why: 'a rounded output, and room for bfloat16 probabilities' },
  {
    kernel: 'diffAttention',
    dtype: 'bfloat16',
    nmse: 2e-3,
    why: 'as attention, amplified where the two maps cancel before the norm',
  },

  // Per-backend rows go here when a backend has a documented reason, e.g.
  //   { kernel: 'matmul', backend: 'cuda', nmse: 1e-6, why: 'TF32 tensor cores round inputs to 10 mantissa bits' }
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

/** The NMSE threshold for a kernel on a backend at a dtype. */
export function toleranceFor(
  kernel: CaseKernel,
  backend: string,
  dtype: DType = 'float32',
  table: readonly ToleranceRow[] = TOLERANCES,
): number {
  return toleranceRow(kernel, backend, dtype, table).nmse;
}
