/**
 * Rotary tables cos/sin [P, d/2] on a backend: row p, column j holds a·cos(p·inv_j) and a·sin(p·inv_j),
 * with the inverse frequencies inv_j and attention factor a of the RoPE scaling (./rope-scaling.ts;
 * plain RoPE: inv_j = θ^(−2j/d), a = 1). Built on the host in float64 (then stored as float32).
 *
 * Fixed scalings get one table from position 0, grown by doubling when a longer context arrives.
 * Length-dependent ones follow transformers: longrope keeps a short-factor and a long-factor table and
 * a forward uses the long one once its length passes L₀; dynamic NTK recomputes the frequencies for
 * the length it has grown to (dynamicRopeLength) and rotates only the positions of that forward, so
 * keys already in a KV cache keep the rotation they were given, exactly as transformers' cache does.
 * Such a window lives until a forward over other positions replaces it, so a training step's backward
 * must come before the next forward (as it does in the trainer).
 */
import type { Backend } from '../backend/kernels.js';
import { ArgumentError } from '../errors.js';
import { tensor } from '../tensor/create.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { dynamicRopeLength, type RopeScaling, ropeFrequencies } from './rope-scaling.js';

export interface RotarySpec {
  /** Head width d the tables rotate (the tables have d/2 columns). */
  readonly dim: number;
  readonly theta: number;
  /** How positions are scaled; absent: plain RoPE. */
  readonly scaling?: RopeScaling;
  /**
   * 'float64' computes the angles exactly and rounds once (most accurate). 'float32' reproduces
   * PyTorch/Hugging Face, which keep inverse frequencies, angles and cos/sin in float32: plain RoPE
   * step by step as they do; a scaled one from its float64 inverse frequencies rounded to float32.
   */
  readonly precision?: 'float64' | 'float32';
}

/** Which rows a host table covers, and the total length (max position + 1) of the forward. */
export interface TableRows {
  /** First position (row 0 of the table); default 0. */
  readonly start?: number;
  /** Length the scaling sees (dynamic, longrope); default start + count. */
  readonly length?: number;
}

/** cos/sin [count, d/2] for positions start … start + count − 1. */
export function rotaryTablesOnHost(
  spec: RotarySpec,
  count: number,
  rows: TableRows = {},
): { cos: Float32Array; sin: Float32Array } {
  const half = spec.dim / 2;
  const start = rows.start ?? 0;
  const cos = new Float32Array(count * half);
  const sin = new Float32Array(count * half);
  const f32 = spec.precision === 'float32';
  const r = f32 ? Math.fround : (x: number) => x;
  const scaling = spec.scaling ?? { type: 'default' };
  const { inverseFrequencies, attentionFactor } = ropeFrequencies(
    spec.dim,
    spec.theta,
    scaling,
    rows.length ?? start + count,
  );
  const a = r(attentionFactor);
  for (let j = 0; j < half; j++) {
    // Plain RoPE in float32 rounds each step as PyTorch does (1/θ^(2j/d) on float32 operands).
    const inverse =
      f32 && scaling.type === 'default' ? r(1 / r(spec.theta ** r((2 * j) / spec.dim))) : r(inverseFrequencies[j]);
    for (let p = 0; p < count; p++) {
      const angle = r((start + p) * inverse);
      cos[p * half + j] = a === 1 ? Math.cos(angle) : r(Math.cos(angle)) * a;
      sin[p * half + j] = a === 1 ? Math.sin(angle) : r(Math.sin(angle)) * a;
    }
  }
  return { cos, sin };
}

/** The tables one forward rotates with: kernel row positionOffset + t is the row of token t. */
export interface ForwardTables {
  readonly cos: Tensor;
  readonly sin: Tensor;
  readonly positionOffset: number;
}

interface DeviceTable {
  cos: Tensor;
  sin: Tensor;
  /** Rows held: positions start … start + rows − 1. */
  rows: number;
  start: number;
}

/** Device-resident tables that grow on demand; owned by a model or module, freed by dispose(). */
export class RotaryTables {
  /** Tables from position 0, by variant ('' for fixed scalings, 'short'/'long' for longrope). */
  readonly #fromZero = new Map<string, DeviceTable>();
  /** dynamic beyond L₀: the rows of the latest forward, with the length they were computed for. */
  #window: (DeviceTable & { length: number }) | null = null;
  /** dynamic: the length the base was last grown to (transformers' max_seq_len_cached). */
  #grown: number;
  readonly #initialPositions: number;
  /** Explicit tables (given values) are never grown. */
  readonly #explicit: boolean;

  constructor(
    readonly backend: Backend,
    readonly spec: RotarySpec,
    initialPositions: number,
    explicit?: { cos: Float32Array; sin: Float32Array },
  ) {
    this.#explicit = explicit !== undefined;
    this.#initialPositions = initialPositions;
    const scaling = spec.scaling;
    this.#grown = scaling?.type === 'dynamic' ? scaling.originalMaxPositions : 0;
    if (explicit) {
      const rows = explicit.cos.length / (spec.dim / 2);
      this.#fromZero.set('', { ...this.#upload(explicit.cos, explicit.sin, rows), rows, start: 0 });
    } else if (scaling?.type !== 'dynamic' && scaling?.type !== 'longrope') {
      this.#table('', initialPositions);
    }
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

  /**
   * cos and sin covering at least `positions` rows from position 0 (fixed scalings and explicit tables;
   * length-dependent ones rotate through forPositions).
   */
  tables(positions: number): { cos: Tensor; sin: Tensor } {
    const scaling = this.spec.scaling?.type;
    if (!this.#explicit && (scaling === 'dynamic' || scaling === 'longrope'))
      throw new ArgumentError('rotary tables', 'a fixed RoPE scaling (use forPositions)', scaling);
    const table = this.#table('', positions);
    return { cos: table.cos, sin: table.sin };
  }

  /**
   * The tables of one forward over positions offset … offset + count − 1 (all rows of a batch share
   * them). Advances the dynamic-NTK state as transformers' forward does, once per distinct call.
   */
  forPositions(offset: number, count: number): ForwardTables {
    const length = offset + count;
    const scaling = this.spec.scaling;
    if (!this.#explicit && scaling?.type === 'longrope') {
      const table = this.#table(length > scaling.originalMaxPositions ? 'long' : 'short', length);
      return { cos: table.cos, sin: table.sin, positionOffset: offset };
    }
    if (!this.#explicit && scaling?.type === 'dynamic') {
      this.#grown = dynamicRopeLength(this.#grown, length, scaling.originalMaxPositions);
      if (this.#grown <= scaling.originalMaxPositions) {
        const table = this.#table('', length);
        return { cos: table.cos, sin: table.sin, positionOffset: offset };
      }
      const w = this.#window;
      if (!w || w.start !== offset || w.rows !== count || w.length !== this.#grown) {
        w?.cos.dispose();
        w?.sin.dispose();
        this.#window = null;
        const host = rotaryTablesOnHost(this.spec, count, { start: offset, length: this.#grown });
        this.#window = { ...this.#upload(host.cos, host.sin, count), rows: count, start: offset, length: this.#grown };
      }
      return { cos: this.#window!.cos, sin: this.#window!.sin, positionOffset: 0 };
    }
    const { cos, sin } = this.tables(length);
    return { cos, sin, positionOffset: offset };
  }

  dispose(): void {
    for (const t of this.#fromZero.values()) {
      t.cos.dispose();
      t.sin.dispose();
    }
    this.#fromZero.clear();
    this.#window?.cos.dispose();
    this.#window?.sin.dispose();
    this.#window = null;
  }

  /** The from-zero table of a variant, built or grown (by doubling) to cover `positions` rows. */
  #table(variant: string, positions: number): DeviceTable {
    const held = this.#fromZero.get(variant);
    if (held && held.rows >= positions) return held;
    if (this.#explicit) {
      throw new ArgumentError('rotary positions', `at most ${held?.rows ?? 0} (the explicit tables given)`, positions);
    }
    const rows = Math.max(positions, held ? 2 * held.rows : this.#initialPositions, 1);
    // The length each variant stands for: longrope's long or short factors, dynamic's original base.
    const scaling = this.spec.scaling;
    const length =
      scaling?.type === 'longrope'
        ? scaling.originalMaxPositions + (variant === 'long' ? 1 : 0)
        : scaling?.type === 'dynamic'
          ? scaling.originalMaxPositions
          : undefined;
    const host = rotaryTablesOnHost(this.spec, rows, { length });
    const uploaded = this.#upload(host.cos, host.sin, rows);
    held?.cos.dispose();
    held?.sin.dispose();
    const table = { ...uploaded, rows, start: 0 };
    this.#fromZero.set(variant, table);
    return table;
  }

  #upload(cos: Float32Array, sin: Float32Array, positions: number): { cos: Tensor; sin: Tensor } {
    const half = this.spec.dim / 2;
    const cosTable = keep(tensor(cos, [positions, half], { backend: this.backend }));
    try {
      return { cos: cosTable, sin: keep(tensor(sin, [positions, half], { backend: this.backend })) };
    } catch (error) {
      cosTable.dispose();
      throw error;
    }
  }
}
