/**
 * The one table of NMSE thresholds. A case looks its threshold up by kernel, backend and dtype (see
 * toleranceRow), so a backend that is legitimately less precise (a WGSL exp, TF32 tensor cores) gets
 * its own row here instead of a looser suite for everyone.
 *
 * Calibration (float32). A correct float32 kernel lands near float32 round-off: about 1e-14 for
 * elementwise kernels and 1e-13 to 1e-11 for reductions over up to 129 terms and for the whole model.
 * The defaults sit 3 to 5 orders of magnitude above that. What must fail sits far above them: one
 * wrong element among the 16 641 outputs of the largest case (129 × 129) is already an NMSE of about
 * 1e-4 when it is off by its own size, and a missing scale, a flipped λ or a wrong GQA group moves whole
 * heads (NMSE 1e-2 to 1). Copies and gathers (embedding, narrow, cacheWrite) and argmax have no
 * round-off at all and must match exactly; so must token ids.
 *
 * float16 / bfloat16: outputs are rounded to 11 / 8 significant bits, an NMSE of about 1e-7 / 5e-6
 * per rounding, compounded over a few stages inside a kernel; the rows below allow for that. Inputs
 * are compared as the backend stores them, so input rounding costs nothing.
 */
import type { DType, KernelName } from '@diff-transformer/core';

/** What a case checks: one kernel, or the model as a whole (full forward, KV-cache decode, generate). */
export type CaseKernel = KernelName | 'model' | 'decode' | 'generate';

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
  // float32 defaults, one per kernel.
  { kernel: 'matmul', nmse: 1e-8, why: 'float32 accumulation over K ≤ 129 terms gives ~1e-13' },
  { kernel: 'embedding', nmse: 0, why: EXACT },
  { kernel: 'rmsNorm', nmse: 1e-9, why: 'one reduction and a square root: ~1e-14' },
  { kernel: 'rotary', nmse: 1e-9, why: 'two products and a sum per element: ~1e-14' },
  { kernel: 'swiglu', nmse: 1e-9, why: 'one exp per element; GPU fast exp stays below 1e-12' },
  { kernel: 'add', nmse: 1e-10, why: 'one correctly rounded addition per element: ≤ 4e-15' },
  { kernel: 'sigmoid', nmse: 1e-9, why: 'one exp per element; GPU fast exp stays below 1e-12' },
  { kernel: 'diffAttention', nmse: 1e-7, why: 'two online softmaxes, a difference and an RMSNorm: ~1e-12' },
  { kernel: 'attention', nmse: 1e-7, why: 'online softmax over ≤ 129 keys: ~1e-13' },
  { kernel: 'softmax', nmse: 1e-9, why: 'exp and a sum over ≤ 129 values: ~1e-14' },
  { kernel: 'argmax', nmse: 0, why: EXACT },
  { kernel: 'narrow', nmse: 0, why: EXACT },
  { kernel: 'cacheWrite', nmse: 0, why: EXACT },
  { kernel: 'model', nmse: 1e-6, why: 'logits after ≤ 3 float32 layers: ~1e-11; a wrong λinit or norm weight moves them by > 1e-3' },
  { kernel: 'decode', nmse: 1e-6, why: 'as model: cached decoding must match the full forward to round-off' },
  { kernel: 'generate', nmse: 0, why: 'token ids are compared exactly' },

  // float16 storage (float32 accumulation assumed): 11 significant bits per stored value.
  { kernel: 'matmul', dtype: 'float16', nmse: 1e-5, why: 'output rounding ~1e-7 plus rounded partial sums' },
  { kernel: 'rmsNorm', dtype: 'float16', nmse: 1e-6, why: 'output rounding ~1e-7' },
  { kernel: 'rotary', dtype: 'float16', nmse: 1e-6, why: 'output rounding ~1e-7' },
  { kernel: 'swiglu', dtype: 'float16', nmse: 1e-6, why: 'output rounding ~1e-7' },
  { kernel: 'add', dtype: 'float16', nmse: 1e-6, why: 'output rounding ~1e-7' },
  { kernel: 'sigmoid', dtype: 'float16', nmse: 1e-6, why: 'output rounding ~1e-7' },
  { kernel: 'softmax', dtype: 'float16', nmse: 1e-6, why: 'output rounding ~1e-7' },
  { kernel: 'diffAttention', dtype: 'float16', nmse: 1e-4, why: 'rounded probabilities, a difference of two maps and a norm' },
  { kernel: 'attention', dtype: 'float16', nmse: 1e-5, why: 'rounded probabilities and output' },

  // bfloat16 storage: 8 significant bits per stored value.
  { kernel: 'matmul', dtype: 'bfloat16', nmse: 1e-4, why: 'output rounding ~5e-6 plus rounded partial sums' },
  { kernel: 'rmsNorm', dtype: 'bfloat16', nmse: 5e-5, why: 'output rounding ~5e-6' },
  { kernel: 'rotary', dtype: 'bfloat16', nmse: 5e-5, why: 'output rounding ~5e-6' },
  { kernel: 'swiglu', dtype: 'bfloat16', nmse: 5e-5, why: 'output rounding ~5e-6' },
  { kernel: 'add', dtype: 'bfloat16', nmse: 5e-5, why: 'output rounding ~5e-6' },
  { kernel: 'sigmoid', dtype: 'bfloat16', nmse: 5e-5, why: 'output rounding ~5e-6' },
  { kernel: 'softmax', dtype: 'bfloat16', nmse: 5e-5, why: 'output rounding ~5e-6' },
  { kernel: 'diffAttention', dtype: 'bfloat16', nmse: 2e-3, why: 'rounded probabilities, a difference of two maps and a norm' },
  { kernel: 'attention', dtype: 'bfloat16', nmse: 5e-4, why: 'rounded probabilities and output' },

  // Per-backend rows go here when a backend has a documented reason, e.g.
  //   { kernel: 'softmax', backend: 'webgpu', nmse: 1e-7, why: 'WGSL exp is only accurate to 3 + 2|x| ULP' }
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
    (row) => row.kernel === kernel && (row.dtype ?? 'float32') === dtype && (row.backend === undefined || row.backend === backend),
  );
  const found = rows.find((row) => row.backend !== undefined) ?? rows[0];
  if (found) return found;
  if (dtype !== 'float32') return toleranceRow(kernel, backend, 'float32', table);
  throw new Error(`no tolerance for kernel '${kernel}' on backend '${backend}'`);
}

/** The NMSE threshold for a kernel on a backend at a dtype. */
export function toleranceFor(kernel: CaseKernel, backend: string, dtype: DType = 'float32', table: readonly ToleranceRow[] = TOLERANCES): number {
  return toleranceRow(kernel, backend, dtype, table).nmse;
}
