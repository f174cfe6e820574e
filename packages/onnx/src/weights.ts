/**
 * How the model's weight matrices are stored in the graph. float32 keeps them as they are; float16
 * halves the files and casts once to float32 inside the graph (ONNX Runtime folds the Cast when the
 * session loads), so the arithmetic stays float32 and matches this project's to round-off. Vectors
 * (norm weights, λ) stay float32 in both. A 4-bit format (ONNX Runtime's MatMulNBits) joins as a third
 * `WeightFormat` whose `linear` writes MatMulNBits with packed blocks, scales and zero points.
 */
import type { HostTensor } from '@diff-transformer/core';
import { float16BitsToFloat32, float32ToFloat16Bits } from '@diff-transformer/core';
import { lazyBytes, type OnnxGraph } from './graph.js';

export const WEIGHT_DTYPES = ['float32', 'float16'] as const;
export type WeightDType = (typeof WEIGHT_DTYPES)[number];

/** Writes weight matrices into a graph and returns float32 values computed from them. */
export class WeightWriter {
  constructor(
    readonly graph: OnnxGraph,
    readonly dtype: WeightDType,
  ) {}

  /** x·Wᵀ for W [out, in] (PyTorch's nn.Linear layout): a MatMul with Wᵀ stored [in, out]. */
  linear(x: string, name: string, weight: HostTensor): string {
    const [out, inFeatures] = weight.shape;
    const stored = this.#matrix(`${name}.MatMul.weight`, [inFeatures, out], () => transposed(weight));
    return this.graph.node('MatMul', [x, this.#asFloat32(stored, name)], {}, { name });
  }

  /** Rows `ids` of the table [V, E], as float32. */
  embedding(ids: string, name: string, table: HostTensor): string {
    const stored = this.#matrix(name, table.shape, () => table.data);
    const rows = this.graph.node('Gather', [stored, ids], { axis: 0 }, { name: 'embed_tokens' });
    return this.dtype === 'float32' ? rows : this.graph.node('Cast', [rows], { to: 1 }, { name: 'embed_tokens.float' });
  }

  /** x·Eᵀ with the embedding table already written as `tableName` (a tied LM head). */
  tiedLinear(x: string, tableName: string, name: string): string {
    const head = this.graph.node('Transpose', [this.#asFloat32(tableName, name)], { perm: [1, 0] }, { name });
    return this.graph.node('MatMul', [x, head], {}, { name });
  }

  /** A float32 vector (norm weight, λ vector), as it is. */
  vector(name: string, tensor: HostTensor): string {
    const { data } = tensor;
    return this.graph.initializer(
      name,
      'float32',
      tensor.shape,
      lazyBytes(data.length * 4, () => new Uint8Array(data.buffer, data.byteOffset, data.byteLength)),
    );
  }

  #matrix(name: string, dims: readonly number[], values: () => Float32Array): string {
    const elements = dims.reduce((n, d) => n * d, 1);
    if (this.dtype === 'float32') {
      return this.graph.initializer(
        name,
        'float32',
        dims,
        lazyBytes(elements * 4, () => {
          const v = values();
          return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        }),
      );
    }
    return this.graph.initializer(
      name,
      'float16',
      dims,
      lazyBytes(elements * 2, () => new Uint8Array(toFloat16(values(), name).buffer)),
    );
  }

  #asFloat32(stored: string, name: string): string {
    return this.dtype === 'float32' ? stored : this.graph.node('Cast', [stored], { to: 1 }, { name: `${name}.float` });
  }
}

/** W [out, in] → Wᵀ [in, out]. */
function transposed(weight: HostTensor): Float32Array {
  const [rows, cols] = weight.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = weight.data[r * cols + c];
  }
  return out;
}

/** float32 → IEEE half bits, refusing values past half's range (they would become ±∞). */
export function toFloat16(values: Float32Array, name: string): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const bits = float32ToFloat16Bits(values[i]);
    if ((bits & 0x7c00) === 0x7c00 && Number.isFinite(values[i])) {
      throw new RangeError(`${name}: ${values[i]} does not fit in float16 (largest 65504); export float32 instead`);
    }
    out[i] = bits;
  }
  return out;
}

/** The values a float16 export stores, read back as float32 (to compare with a model holding them). */
export function roundToFloat16(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  const bits = toFloat16(values, 'values');
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToFloat32(bits[i]);
  return out;
}
