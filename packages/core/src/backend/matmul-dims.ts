import type { MatmulAttrs, OutputSpec, TensorView } from './kernels.js';

/** The sizes of a matmul call, as every backend needs them (core has already checked the shapes). */
export interface MatmulDims {
  /** Product of the batch dimensions of the output (1 for plain matrices). */
  readonly batches: number;
  readonly m: number;
  readonly n: number;
  /** The inner dimension. */
  readonly k: number;
  /** b has no batch dimensions: one weight shared by every batch entry of a. */
  readonly sharedB: boolean;
}

export function matmulDims(a: TensorView, b: TensorView, attrs: MatmulAttrs, out: OutputSpec): MatmulDims {
  const rank = out.shape.length;
  let batches = 1;
  for (let i = 0; i < rank - 2; i++) batches *= out.shape[i];
  return {
    batches,
    m: out.shape[rank - 2],
    n: out.shape[rank - 1],
    k: attrs.transposeA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1],
    sharedB: b.shape.length === 2,
  };
}
