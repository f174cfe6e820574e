/**
 * Rotary tables cos/sin [P, d/2] on a backend: row p, column j holds cos/sin(p·θ^(−2j/d)). Built on
 * the host in float64 (then stored as float32) and grown by doubling when a longer context arrives.
 */
import type { Backend } from '../backend/kernels.js';
import { ArgumentError } from '../errors.js';
import { tensor } from '../tensor/create.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

export interface RotarySpec {
  /** Head width d the tables rotate (the tables have d/2 columns). */
  readonly dim: number;
  readonly theta: number;
  /**
   * 'float64' computes the angles exactly and rounds once (most accurate). 'float32' reproduces
   * PyTorch/Hugging Face, which compute inverse frequencies, angles and cos/sin in float32 — needed to
   * match their logits to float32 round-off at long positions.
   */
  readonly precision?: 'float64' | 'float32';
}

export function rotaryTablesOnHost(spec: RotarySpec, positions: number): { cos: Float32Array; sin: Float32Array } {
  const half = spec.dim / 2;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  const f32 = spec.precision === 'float32';
  const r = f32 ? Math.fround : (x: number) => x;
  for (let j = 0; j < half; j++) {
    const inverseFrequency = r(1 / r(spec.theta ** r((2 * j) / spec.dim)));
    for (let p = 0; p < positions; p++) {
      const angle = r(p * inverseFrequency);
      cos[p * half + j] = Math.cos(angle);
      sin[p * half + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Device-resident tables that grow on demand; owned by a model or module, freed by dispose(). */
export class RotaryTables {
  #cos: Tensor | null = null;
  #sin: Tensor | null = null;
  #positions = 0;
  /** Explicit tables (given values) are never grown. */
  readonly #growable: boolean;

  constructor(
    readonly backend: Backend,
    readonly spec: RotarySpec,
    initialPositions: number,
    explicit?: { cos: Float32Array; sin: Float32Array },
  ) {
    this.#growable = !explicit;
    if (explicit) this.#upload(explicit.cos, explicit.sin, explicit.cos.length / (spec.dim / 2));
    else this.#build(initialPositions);
  }

  /** Tables with explicit values [P, dim/2] (e.g. the tables a reference module ran with). */
  static fromValues(backend: Backend, cos: Float32Array, sin: Float32Array, dim: number): RotaryTables {
    if (cos.length !== sin.length || cos.length % (dim / 2) !== 0) {
      throw new ArgumentError(
        'rotary tables',
        `cos and sin of equal length, a multiple of ${dim / 2}`,
        `${cos.length} and ${sin.length} values`,
      );
    }
    return new RotaryTables(backend, { dim, theta: NaN }, 0, { cos, sin });
  }

  /** cos and sin covering at least `positions` rows. */
  tables(positions: number): { cos: Tensor; sin: Tensor } {
    if (positions > this.#positions) {
      if (!this.#growable) {
        throw new ArgumentError(
          'rotary positions',
          `at most ${this.#positions} (the explicit tables given)`,
          positions,
        );
      }
      this.#build(Math.max(positions, 2 * this.#positions));
    }
    return { cos: this.#cos!, sin: this.#sin! };
  }

  dispose(): void {
    this.#cos?.dispose();
    this.#sin?.dispose();
    this.#cos = this.#sin = null;
    this.#positions = 0;
  }

  #build(positions: number): void {
    const { cos, sin } = rotaryTablesOnHost(this.spec, positions);
    this.#upload(cos, sin, positions);
  }

  #upload(cos: Float32Array, sin: Float32Array, positions: number): void {
    this.dispose();
    const half = this.spec.dim / 2;
    const cosTable = keep(tensor(cos, [positions, half], { backend: this.backend }));
    try {
      this.#sin = keep(tensor(sin, [positions, half], { backend: this.backend }));
    } catch (error) {
      cosTable.dispose();
      throw error;
    }
    this.#cos = cosTable;
    this.#positions = positions;
  }
}
