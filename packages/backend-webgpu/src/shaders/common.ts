/**
 * WGSL shared by the shaders, and the host-side helpers that size a dispatch.
 *
 * Large element counts exceed the 65 535 workgroups a dimension may have, so 1-D work is laid out on a
 * 2-D grid of workgroups: `flatWorkgroup` turns it back into one index.
 */

/** Threads per workgroup of the elementwise and copy shaders. */
export const ELEMENTWISE_WORKGROUP = 256;

const MAX_GROUPS = 65535;

/** A 2-D grid of at least `count` workgroups. */
export function grid(count: number): [number, number, number] {
  if (count <= MAX_GROUPS) return [count, 1, 1];
  return [MAX_GROUPS, Math.ceil(count / MAX_GROUPS), 1];
}

/** Workgroups for one thread per element. */
export function elementGrid(elements: number, perWorkgroup = ELEMENTWISE_WORKGROUP): [number, number, number] {
  return grid(Math.ceil(elements / perWorkgroup));
}

/** The entry point's builtins and the flat workgroup index over a grid() launch. */
export const FLAT_BUILTINS =
  '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, ' +
  '@builtin(local_invocation_index) lid: u32';
export const FLAT_WORKGROUP = `let group = wid.x + wid.y * nwg.x;`;

/** Builds the 32-bit words of a uniform block, in the order of the shader's Params struct. */
export class Params {
  readonly words: number[] = [];
  static readonly #f32 = new Float32Array(1);
  static readonly #u32 = new Uint32Array(Params.#f32.buffer);

  /** Unsigned integers (u32 fields). */
  u(...values: number[]): this {
    for (const v of values) this.words.push(v >>> 0);
    return this;
  }

  /** Floats (f32 fields). */
  f(...values: number[]): this {
    for (const v of values) {
      Params.#f32[0] = v;
      this.words.push(Params.#u32[0]);
    }
    return this;
  }
}

export function params(): Params {
  return new Params();
}
