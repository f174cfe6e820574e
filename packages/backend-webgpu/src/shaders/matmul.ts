/**
 * Tiled matmul: c [batch, M, N] = a [batch, M, K] · b [batch | -, K, N], either operand stored
 * transposed, b shared by every batch entry when its batch stride is 0.
 *
 * A workgroup of WGX × WGY threads computes a BM × BN block of c (BM = WGY·TM, BN = WGX·TN). Per step
 * of BK along K, the threads stage a BK × BM slice of a and a BK × BN slice of b in workgroup memory
 * (each load walks the operand's contiguous dimension, so the layout decides the index order), then
 * every thread multiplies its TM values of a by its TN values of b into TM × TN accumulators held in
 * registers (register blocking: TM + TN loads from workgroup memory per TM·TN FMAs). Thread (x, y)
 * owns rows y + WGY·r and columns x + WGX·c, so neighbouring threads write neighbouring columns.
 * The inner products are unrolled in the generated source so the accumulators stay scalars.
 */
import type { Program } from '../device/pipelines.js';

export interface MatmulTile {
  readonly name: string;
  /** Threads along N and along M. */
  readonly wgx: number;
  readonly wgy: number;
  /** Outputs per thread along M and along N. */
  readonly tm: number;
  readonly tn: number;
  /** Depth of a K step. */
  readonly bk: number;
  /**
   * Workgroup memory and accumulators as vec4: thread (x, y) owns 4-row and 4-column blocks
   * (rows 4y + 64i + r, columns 4x + 64j + c), so each K step reads its a and b values in TM/4 + TN/4
   * 16-byte loads instead of TM + TN scalar ones.
   */
  readonly vec4?: boolean;
}

/** 128 × 128 blocks, 8 × 8 per thread: large products (most reuse per load). */
export const LARGE_TILE: MatmulTile = { name: 'large', wgx: 16, wgy: 16, tm: 8, tn: 8, bk: 8 };
/** The same blocks with vec4 workgroup memory and accumulators (the default for large products). */
export const LARGE_VEC4_TILE: MatmulTile = { name: 'large-vec4', wgx: 16, wgy: 16, tm: 8, tn: 8, bk: 8, vec4: true };
/** 64 × 64 blocks, 4 × 4 per thread. */
const MEDIUM_TILE: MatmulTile = { name: 'medium', wgx: 16, wgy: 16, tm: 4, tn: 4, bk: 16 };
/** 4 × 256 blocks: a few rows (decoding through a Linear layer) against a wide weight. */
const SKINNY_TILE: MatmulTile = { name: 'skinny', wgx: 64, wgy: 4, tm: 1, tn: 4, bk: 8 };

export function tileFor(m: number, n: number, large: MatmulTile = LARGE_VEC4_TILE): MatmulTile {
  if (m <= 4) return SKINNY_TILE;
  if (m >= 512 && n >= 512) return large;
  return MEDIUM_TILE;
}

export function matmulProgram(transposeA: boolean, transposeB: boolean, tile: MatmulTile): Program {
  if (tile.vec4) return matmulVec4Program(transposeA, transposeB, tile);
  const { wgx, wgy, tm, tn, bk } = tile;
  const bm = wgy * tm;
  const bn = wgx * tn;
  const threads = wgx * wgy;
  return {
    key: `matmul/${transposeA ? 't' : 'n'}${transposeB ? 't' : 'n'}/${tile.name}`,
    layout: 'rrw',
    workgroupBytes: 4 * bk * (bm + bn),
    code: () => {
      const lines: string[] = [];
      const acc = (r: number, c: number) => `acc_${r}_${c}`;
      for (let r = 0; r < tm; r++) for (let c = 0; c < tn; c++) lines.push(`  var ${acc(r, c)} = 0.0;`);
      const declarations = lines.join('\n');
      const step: string[] = [];
      for (let r = 0; r < tm; r++) step.push(`      let a_${r} = As[q * ${bm}u + local.y + ${wgy * r}u];`);
      for (let c = 0; c < tn; c++) step.push(`      let b_${c} = Bs[q * ${bn}u + local.x + ${wgx * c}u];`);
      for (let r = 0; r < tm; r++)
        for (let c = 0; c < tn; c++) step.push(`      ${acc(r, c)} = fma(a_${r}, b_${c}, ${acc(r, c)});`);
      const writes: string[] = [];
      for (let r = 0; r < tm; r++) {
        writes.push(`  { let i = row0 + local.y + ${wgy * r}u;\n    if (i < p.m) {`);
        for (let c = 0; c < tn; c++) {
          writes.push(
            `      { let j = col0 + local.x + ${wgx * c}u; if (j < p.n) { c[cOff + i * p.n + j] = ${acc(r, c)}; } }`,
          );
        }
        writes.push('    }\n  }');
      }
      // Each staging loop walks the operand's contiguous dimension with consecutive threads.
      const loadA = transposeA ? `let i = e % ${bm}u; let q = e / ${bm}u;` : `let q = e % ${bk}u; let i = e / ${bk}u;`;
      const indexA = transposeA ? 'kk * p.m + ii' : 'ii * p.k + kk';
      const loadB = transposeB ? `let q = e % ${bk}u; let j = e / ${bk}u;` : `let j = e % ${bn}u; let q = e / ${bn}u;`;
      const indexB = transposeB ? 'jj * p.k + kk' : 'kk * p.n + jj';
      return /* wgsl */ `
struct Params { m: u32, n: u32, k: u32, aBatch: u32, bBatch: u32, cBatch: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
var<workgroup> As: array<f32, ${bk * bm}>;
var<workgroup> Bs: array<f32, ${bk * bn}>;

@compute @workgroup_size(${wgx}, ${wgy})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) local: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.y * ${bm}u;
  let col0 = wid.x * ${bn}u;
  let aOff = wid.z * p.aBatch;
  let bOff = wid.z * p.bBatch;
  let cOff = wid.z * p.cBatch;
${declarations}
  for (var k0 = 0u; k0 < p.k; k0 += ${bk}u) {
    for (var e = lid; e < ${bk * bm}u; e += ${threads}u) {
      ${loadA}
      let ii = row0 + i;
      let kk = k0 + q;
      var v = 0.0;
      if (ii < p.m && kk < p.k) { v = a[aOff + ${indexA}]; }
      As[q * ${bm}u + i] = v;
    }
    for (var e = lid; e < ${bk * bn}u; e += ${threads}u) {
      ${loadB}
      let jj = col0 + j;
      let kk = k0 + q;
      var v = 0.0;
      if (jj < p.n && kk < p.k) { v = b[bOff + ${indexB}]; }
      Bs[q * ${bn}u + j] = v;
    }
    workgroupBarrier();
    for (var q = 0u; q < ${bk}u; q++) {
${step.join('\n')}
    }
    workgroupBarrier();
  }
${writes.join('\n')}
}`;
    },
  };
}

/** Output columns per workgroup of the GEMV program, and threads per column. */
export const GEMV_COLUMNS = 8;
const GEMV_LANES = 32;
/** Rows of a that the GEMV program handles (decoding: one row per sequence). */
export const GEMV_MAX_ROWS = 4;

/**
 * A few rows of a [M ≤ 4, K] against a weight stored [N, K] (a Linear layer while decoding): each
 * output column is a dot product over K, which 32 threads share (each reading every 32nd element, so
 * a column's weight row is read once, contiguously), then a tree reduction in workgroup memory. A
 * workgroup makes 8 columns for all M rows: every weight element is read exactly once and a K-long
 * reduction costs five barriers, where the tiled program needs two per K step.
 */
export function gemvProgram(rows: number): Program {
  const threads = GEMV_COLUMNS * GEMV_LANES;
  const rowsRange = [...Array(rows).keys()];
  return {
    key: `matmul/gemv/m${rows}`,
    layout: 'rrw',
    workgroupBytes: 4 * rows * threads,
    code: () => /* wgsl */ `
struct Params { m: u32, n: u32, k: u32, aBatch: u32, bBatch: u32, cBatch: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
var<workgroup> partial: array<f32, ${rows * threads}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let column = wid.x * ${GEMV_COLUMNS}u + lid / ${GEMV_LANES}u;
  let lane = lid % ${GEMV_LANES}u;
  let aOff = wid.z * p.aBatch;
  let bRow = wid.z * p.bBatch + min(column, p.n - 1u) * p.k;
${rowsRange.map((r) => `  var sum${r} = 0.0;`).join('\n')}
  for (var q = lane; q < p.k; q += ${GEMV_LANES}u) {
    let w = b[bRow + q];
${rowsRange.map((r) => `    sum${r} = fma(a[aOff + ${r}u * p.k + q], w, sum${r});`).join('\n')}
  }
${rowsRange.map((r) => `  partial[${r * threads}u + lid] = sum${r};`).join('\n')}
  workgroupBarrier();
  for (var stride = ${GEMV_LANES / 2}u; stride > 0u; stride = stride >> 1u) {
    if (lane < stride) {
${rowsRange.map((r) => `      partial[${r * threads}u + lid] += partial[${r * threads}u + lid + stride];`).join('\n')}
    }
    workgroupBarrier();
  }
  if (lane == 0u && column < p.n) {
${rowsRange.map((r) => `    c[wid.z * p.cBatch + ${r}u * p.n + column] = partial[${r * threads}u + lid];`).join('\n')}
  }
}`,
  };
}

/** Staging order and global index of each operand, shared by both generators. */
function staging(transposeA: boolean, transposeB: boolean, bm: number, bn: number, bk: number) {
  return {
    loadA: transposeA ? `let i = e % ${bm}u; let q = e / ${bm}u;` : `let q = e % ${bk}u; let i = e / ${bk}u;`,
    indexA: transposeA ? 'kk * p.m + ii' : 'ii * p.k + kk',
    loadB: transposeB ? `let q = e % ${bk}u; let j = e / ${bk}u;` : `let j = e % ${bn}u; let q = e / ${bn}u;`,
    indexB: transposeB ? 'jj * p.k + kk' : 'kk * p.n + jj',
  };
}

/** The vec4 form of matmulProgram (see MatmulTile.vec4); tm and tn are multiples of 4. */
function matmulVec4Program(transposeA: boolean, transposeB: boolean, tile: MatmulTile): Program {
  const { wgx, wgy, tm, tn, bk } = tile;
  const bm = wgy * tm;
  const bn = wgx * tn;
  const threads = wgx * wgy;
  const rowBlocks = tm / 4; // 4-row blocks per thread, 4·wgy rows apart
  const colBlocks = tn / 4;
  const { loadA, indexA, loadB, indexB } = staging(transposeA, transposeB, bm, bn, bk);
  const acc = (r: number, cb: number) => `acc_${r}_${cb}`;
  const rowOf = (r: number) => `${4 * wgy * Math.floor(r / 4) + (r % 4)}u + 4u * local.y`; // r-th row of this thread
  const lines: string[] = [];
  for (let r = 0; r < tm; r++)
    for (let cb = 0; cb < colBlocks; cb++) lines.push(`  var ${acc(r, cb)} = vec4<f32>(0.0);`);
  const step: string[] = [];
  for (let rb = 0; rb < rowBlocks; rb++) step.push(`      let a_${rb} = As[q * ${bm / 4}u + local.y + ${wgy * rb}u];`);
  for (let cb = 0; cb < colBlocks; cb++) step.push(`      let b_${cb} = Bs[q * ${bn / 4}u + local.x + ${wgx * cb}u];`);
  for (let r = 0; r < tm; r++) {
    const component = `a_${Math.floor(r / 4)}.${'xyzw'[r % 4]}`;
    for (let cb = 0; cb < colBlocks; cb++)
      step.push(`      ${acc(r, cb)} = fma(vec4<f32>(${component}), b_${cb}, ${acc(r, cb)});`);
  }
  const writes: string[] = [];
  for (let r = 0; r < tm; r++) {
    writes.push(`  { let i = row0 + ${rowOf(r)};\n    if (i < p.m) {`);
    for (let cb = 0; cb < colBlocks; cb++) {
      for (let c = 0; c < 4; c++) {
        writes.push(
          `      { let j = col0 + 4u * local.x + ${4 * wgx * cb + c}u; ` +
            `if (j < p.n) { c[cOff + i * p.n + j] = ${acc(r, cb)}.${'xyzw'[c]}; } }`,
        );
      }
    }
    writes.push('    }\n  }');
  }
  return {
    key: `matmul/${transposeA ? 't' : 'n'}${transposeB ? 't' : 'n'}/${tile.name}`,
    layout: 'rrw',
    workgroupBytes: 4 * bk * (bm + bn),
    code: () => /* wgsl */ `
struct Params { m: u32, n: u32, k: u32, aBatch: u32, bBatch: u32, cBatch: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
// Row i of a K step lives in As[q·BM/4 + i/4][i % 4]; likewise columns in Bs.
var<workgroup> As: array<vec4<f32>, ${(bk * bm) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(bk * bn) / 4}>;

@compute @workgroup_size(${wgx}, ${wgy})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) local: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.y * ${bm}u;
  let col0 = wid.x * ${bn}u;
  let aOff = wid.z * p.aBatch;
  let bOff = wid.z * p.bBatch;
  let cOff = wid.z * p.cBatch;
${lines.join('\n')}
  for (var k0 = 0u; k0 < p.k; k0 += ${bk}u) {
    for (var e = lid; e < ${bk * bm}u; e += ${threads}u) {
      ${loadA}
      let ii = row0 + i;
      let kk = k0 + q;
      var v = 0.0;
      if (ii < p.m && kk < p.k) { v = a[aOff + ${indexA}]; }
      As[q * ${bm / 4}u + i / 4u][i % 4u] = v;
    }
    for (var e = lid; e < ${bk * bn}u; e += ${threads}u) {
      ${loadB}
      let jj = col0 + j;
      let kk = k0 + q;
      var v = 0.0;
      if (jj < p.n && kk < p.k) { v = b[bOff + ${indexB}]; }
      Bs[q * ${bn / 4}u + j / 4u][j % 4u] = v;
    }
    workgroupBarrier();
    for (var q = 0u; q < ${bk}u; q++) {
${step.join('\n')}
    }
    workgroupBarrier();
  }
${writes.join('\n')}
}`,
  };
}
