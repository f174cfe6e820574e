/**
 * Index-mapping shaders, one thread per output element: embedding (a gather of table rows), rotary
 * (each element reads its pair partner), and the copies narrow and cacheWrite. Copies move 32-bit
 * words (u32), so they serve float32 and int32 alike. embedding's backward is a scatter-add without
 * float atomics: EMBEDDING_CHAINS links the positions of each id in order, EMBEDDING_SUM walks them.
 */
import type { Program } from '../device/pipelines.js';
import { ELEMENTWISE_WORKGROUP as WG, FLAT_BUILTINS, FLAT_WORKGROUP } from './common.js';

const header = (fields: string, bindings: string) => /* wgsl */ `
struct Params { ${fields} }
@group(0) @binding(0) var<uniform> p: Params;
${bindings}
@compute @workgroup_size(${WG})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let i = group * ${WG}u + lid;`;

/** out[n, e] = table[ids[n], e]: ids were range-checked by core on the host. */
export const EMBEDDING: Program = {
  key: 'gather/embedding',
  layout: 'rrw',
  code: () => /* wgsl */ `${header(
    'n: u32, width: u32',
    `@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;`,
  )}
  if (i >= p.n) { return; }
  let row = u32(ids[i / p.width]);
  y[i] = table[row * p.width + i % p.width];
}`,
};

/**
 * Rotary position embedding of x [B, T, H, d] with tables [P, r/2]: element i of a head is in a pair
 * (a, b) and becomes a·cos − b·sin (first of the pair) or b·cos + a·sin (second); i ≥ r is copied.
 */
export const ROTARY: Program = {
  key: 'gather/rotary',
  layout: 'rrrw',
  code: () => /* wgsl */ `${header(
    'n: u32, tokens: u32, heads: u32, width: u32, half: u32, positionOffset: u32, interleaved: u32',
    `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> cosTable: array<f32>;
@group(0) @binding(3) var<storage, read> sinTable: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;`,
  )}
  if (i >= p.n) { return; }
  let dim = i % p.width;
  if (dim >= 2u * p.half) { y[i] = x[i]; return; }
  let token = (i / (p.width * p.heads)) % p.tokens;
  var j: u32;
  var first: bool;
  var partner: u32;
  if (p.interleaved != 0u) {
    j = dim / 2u;
    first = dim % 2u == 0u;
    partner = select(i - 1u, i + 1u, first);
  } else {
    first = dim < p.half;
    j = select(dim - p.half, dim, first);
    partner = select(i - p.half, i + p.half, first);
  }
  let row = (p.positionOffset + token) * p.half + j;
  let c = cosTable[row];
  let s = sinTable[row];
  let mine = x[i];
  let other = x[partner];
  // first: (a = mine, b = other) → a·cos − b·sin; second: (a = other, b = mine) → b·cos + a·sin.
  y[i] = select(mine * c + other * s, mine * c - other * s, first);
}`,
};

/** out = x[..., start : start + length, ...] along one axis, as outer × (length · inner) runs. */
export const NARROW: Program = {
  key: 'gather/narrow',
  layout: 'rw',
  code: () => /* wgsl */ `${header(
    'n: u32, run: u32, sourceRun: u32, offset: u32',
    `@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;`,
  )}
  if (i >= p.n) { return; }
  y[i] = x[(i / p.run) * p.sourceRun + p.offset + i % p.run];
}`,
};

/** cache[b, position + t, ...] = values[b, t, ...], in place. */
export const CACHE_WRITE: Program = {
  key: 'gather/cacheWrite',
  layout: 'rw',
  code: () => /* wgsl */ `${header(
    'n: u32, run: u32, cacheRun: u32, offset: u32',
    `@group(0) @binding(1) var<storage, read> values: array<u32>;
@group(0) @binding(2) var<storage, read_write> cache: array<u32>;`,
  )}
  if (i >= p.n) { return; }
  cache[(i / p.run) * p.cacheRun + p.offset + i % p.run] = values[i];
}`,
};

/** The end of a chain of positions. */
const END = '0xffffffffu';
export const EMBEDDING_CHAIN_THREADS = 256;

/**
 * One thread per vocabulary row v scans the ids in order (staged in tiles that the workgroup shares)
 * and links the positions holding v: first[v], then next[i] for each, END last (END alone if v never
 * occurs). Each position has exactly one id, so every next[i] is written once, by one thread.
 */
export const EMBEDDING_CHAINS: Program = {
  key: 'gather/embeddingChains',
  layout: 'rww',
  code: () => /* wgsl */ `
struct Params { n: u32, vocab: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> first: array<u32>;
@group(0) @binding(3) var<storage, read_write> next: array<u32>;
var<workgroup> tile: array<i32, ${EMBEDDING_CHAIN_THREADS}>;
@compute @workgroup_size(${EMBEDDING_CHAIN_THREADS})
fn main(${FLAT_BUILTINS}) {
  ${FLAT_WORKGROUP}
  let v = i32(group * ${EMBEDDING_CHAIN_THREADS}u + lid);
  var head = ${END};
  var last = ${END};
  for (var i0 = 0u; i0 < p.n; i0 += ${EMBEDDING_CHAIN_THREADS}u) {
    if (i0 + lid < p.n) { tile[lid] = ids[i0 + lid]; }
    workgroupBarrier();
    let count = min(${EMBEDDING_CHAIN_THREADS}u, p.n - i0);
    for (var j = 0u; j < count; j++) {
      if (tile[j] == v) {
        let i = i0 + j;
        if (last == ${END}) { head = i; } else { next[last] = i; }
        last = i;
      }
    }
    workgroupBarrier();
  }
  if (u32(v) < p.vocab) {
    first[v] = head;
    if (last != ${END}) { next[last] = ${END}; }
  }
}`,
};

/** dTable[v, c] = Σ dy[i, c] over the chain of v, in the order of the ids; 0 for an empty chain. */
export const EMBEDDING_SUM: Program = {
  key: 'gather/embeddingSum',
  layout: 'rrrw',
  code: () => /* wgsl */ `${header(
    'n: u32, width: u32',
    `@group(0) @binding(1) var<storage, read> first: array<u32>;
@group(0) @binding(2) var<storage, read> next: array<u32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;`,
  )}
  if (i >= p.n) { return; }
  let c = i % p.width;
  var sum = 0.0;
  var position = first[i / p.width];
  while (position != ${END}) {
    sum += dy[position * p.width + c];
    position = next[position];
  }
  y[i] = sum;
}`,
};
