// The backward of both attention kernels, FlashAttention-2 style (Dao 2023, §3.1 and Algorithm 2): the
// probabilities are recomputed tile by tile from q, k and the log-sum-exp the forward saved, so no T×S buffer
// exists (memory is linear in context, as in the forward). SIMT kernels in float32 with clear index math; the
// tensor-core version can come later. Four steps, all deterministic (fixed order, no atomics):
//   1. rows    one block per query row (b, t, h): the output gradient each map sees and the row terms D.
//              attention: dU = dO, D = dO·O. diff: u = A − λ·B from the saved map outputs, the fused norm's
//              backward dU = (g − n·mean(g ⊙ n))/r (n = u/r, g = dOut ⊙ w · outputScale; dU = dOut without
//              norm), D1 = dU·A, D2 = −λ·dU·B, dλ_row = −dU·B. Map 1 sees dU, map 2 sees −λ·dU.
//   2. dK, dV  one block per (key tile, kv group, batch): for each map, every head of the GQA group and every
//              query tile that can see the keys (causal tiles start at the first such query), recompute
//              P = e^(s·q·k − lse), dP = dU_m·vᵀ, dS = P ⊙ (dP − D_m), and accumulate dV += Pᵀ·dU_m and
//              dK += s·dSᵀ·q in shared memory, each element owned by one thread. Shared keys (DIFF V2) sum
//              both maps into one dK. Keys past keyLength get 0.
//   3. dQ      one block per (query tile, head, batch), query-major (no atomics, unlike FlashAttention-2's
//              dQ): the same P and dS over the keys the tile sees, dQ = s·dS·k.
//   4. sums    a per-head λ sums dλ_row over (b, t), the norm weight sums dOut ⊙ n · outputScale over rows:
//              column sums of reduce.cuh.
// Query and key tiles have the same size (attention_backward_tile): the largest of 32, 16, 8, 4 rows whose
// shared memory fits in 96 KiB, the most every target (sm_86/sm_89: 99 KiB) grants a block.
#include "common.cuh"
#include "reduce.cuh"
#include "training.h"

namespace dtx {
namespace {

// Threads per block of the tile kernels. Their launch bounds ask for one block per SM at least (shared memory
// allows one to three anyway), which lets ptxas use the registers it needs instead of spilling on sm_80.
constexpr int kThreads = 256;
constexpr int kRowThreads = 128;  // per block of the rows kernel
constexpr int kSharedBudget = 96 * 1024;

// Shared memory of the tile kernels, in floats. Rows of q, k, dU and v tiles are padded by one float, so the
// threads of a warp that read different rows at the same column hit different banks.
struct Layout {
  int q_stride, k_stride, u_stride, v_stride;
  int q, k, u, v, p, ds, lse, delta, acc_k, acc_v, total;
};

__host__ __device__ inline Layout tile_layout(int tile, int dk, int dv) {
  Layout l;
  l.q_stride = l.k_stride = dk + 1;
  l.u_stride = l.v_stride = dv + 1;
  int o = 0;
  l.q = o, o += tile * l.q_stride;  // queries [tile][dk] of one map
  l.k = o, o += tile * l.k_stride;  // keys [tile][dk] of one map
  l.u = o, o += tile * l.u_stride;  // output gradients dU_m [tile][dv] the map sees
  l.v = o, o += tile * l.v_stride;  // values [tile][dv]
  l.p = o, o += tile * tile;        // P [query][key]
  l.ds = o, o += tile * tile;       // dS [query][key]
  l.lse = o, o += tile;             // log-sum-exp of the tile's queries for the map
  l.delta = o, o += tile;           // D_m of the tile's queries
  l.acc_k = o, o += tile * dk;      // dK (dK/dV kernel) or dQ (dQ kernel) accumulators
  l.acc_v = o, o += tile * dv;      // dV accumulators (dK/dV kernel only)
  l.total = o;
  return l;
}

__device__ __forceinline__ float lambda_of(const AttentionParams& p, int64_t row) {
  return load_any(p.lambda, p.lambda_dtype, p.lambda_per_token ? row : row % p.heads);
}

// ---- 1. rows -------------------------------------------------------------------------------------------------

template <typename T, bool kDiff>
__global__ void __launch_bounds__(kRowThreads)
    backward_rows_kernel(const AttentionBackwardParams bp, float* __restrict__ d_u, float* __restrict__ delta,
                         float* __restrict__ rho_out, float* __restrict__ d_lambda_rows) {
  __shared__ float scratch[32];
  const AttentionParams& p = bp.forward;
  const int64_t row = blockIdx.x;
  const int dv = p.dv;
  const T* d_out = static_cast<const T*>(bp.d_out) + row * dv;
  float* u_row = d_u + row * dv;
  if (!kDiff) {
    const T* o = static_cast<const T*>(bp.output) + row * dv;
    float dot = 0.f;
    for (int c = threadIdx.x; c < dv; c += kRowThreads) {
      const float g = to_float(d_out[c]);
      u_row[c] = g;
      dot += g * to_float(o[c]);
    }
    dot = block_reduce<false>(dot, scratch);
    if (threadIdx.x == 0) delta[row] = dot;
    return;
  }
  const float lambda = lambda_of(p, row);
  const float* a = bp.map_outputs + row * 2 * dv;
  const float* b = a + dv;
  const void* norm_weight = p.norm_weight;  // captured by value: a reference capture costs a stack frame
  const int norm_weight_dtype = p.norm_weight_dtype;
  auto weight = [norm_weight, norm_weight_dtype](int c) {
    return norm_weight ? load_any(norm_weight, norm_weight_dtype, c) : 1.f;
  };
  float rho = 1.f, mean_gn = 0.f;
  if (p.norm) {
    float squares = 0.f, projection = 0.f;
    for (int c = threadIdx.x; c < dv; c += kRowThreads) {
      const float u = a[c] - lambda * b[c];
      squares += u * u;
      projection += to_float(d_out[c]) * weight(c) * u;
    }
    squares = block_reduce<false>(squares, scratch);
    projection = block_reduce<false>(projection, scratch);
    rho = rsqrtf(squares / dv + p.eps);
    mean_gn = p.output_scale * projection * rho / dv;  // mean(g ⊙ n)
  }
  float d1 = 0.f, dl = 0.f;
  for (int c = threadIdx.x; c < dv; c += kRowThreads) {
    float du = to_float(d_out[c]);
    if (p.norm) du = (du * weight(c) * p.output_scale - (a[c] - lambda * b[c]) * rho * mean_gn) * rho;
    u_row[c] = du;
    d1 += du * a[c];
    dl -= du * b[c];
  }
  d1 = block_reduce<false>(d1, scratch);
  dl = block_reduce<false>(dl, scratch);
  if (threadIdx.x == 0) {
    delta[row * 2] = d1;
    delta[row * 2 + 1] = lambda * dl;  // (−λ·dU)·B
    if (p.lambda_per_token) store_any(bp.d_lambda, p.lambda_dtype, row, dl);
    else d_lambda_rows[row] = dl;
    if (rho_out) rho_out[row] = rho;
  }
}

// ---- the tile both kernels share -------------------------------------------------------------------------------

// For every (query ti, key si) of the tile: P = e^(scale·q·k − lse) where key s0 + si is visible to query t0 + ti
// (inside T and keyLength, and not after the query's position when causal), else 0; dS = P·(dU·v − D).
__device__ __forceinline__ void score_tile(const AttentionParams& p, const Layout& l, float* smem, int tile, int t0,
                                           int s0) {
  const float* qs = smem + l.q;
  const float* ks = smem + l.k;
  const float* us = smem + l.u;
  const float* vs = smem + l.v;
  for (int pair = threadIdx.x; pair < tile * tile; pair += kThreads) {
    const int ti = pair / tile, si = pair % tile;
    const int t = t0 + ti, s = s0 + si;
    const bool visible = t < p.tokens && s < p.key_length && (!p.causal || s <= p.key_offset + t);
    float probability = 0.f, ds = 0.f;
    if (visible) {
      float dot = 0.f;
      for (int j = 0; j < p.dk; ++j) dot = fmaf(qs[ti * l.q_stride + j], ks[si * l.k_stride + j], dot);
      probability = expf(p.scale * dot - smem[l.lse + ti]);
      float dp = 0.f;
      for (int c = 0; c < p.dv; ++c) dp = fmaf(us[ti * l.u_stride + c], vs[si * l.v_stride + c], dp);
      ds = probability * (dp - smem[l.delta + ti]);
    }
    smem[l.p + pair] = probability;
    smem[l.ds + pair] = ds;
  }
}

// Loads rows [t0, t0 + tile) of map m of head h: q (half-head 2h + m for diff), dU_m = dU (map 1) or −λ·dU (map 2),
// and the row statistics; rows past T are 0.
template <typename T, bool kDiff>
__device__ __forceinline__ void load_queries(const AttentionBackwardParams& bp, const Layout& l, float* smem, int tile,
                                             const float* d_u, const float* delta, int b, int h, int m, int t0) {
  const AttentionParams& p = bp.forward;
  const int maps = kDiff ? 2 : 1;
  const int q_heads = kDiff ? 2 * p.heads : p.heads;
  const int q_head = kDiff ? 2 * h + m : h;
  const T* Q = static_cast<const T*>(p.q);
  for (int e = threadIdx.x; e < tile * p.dk; e += kThreads) {
    const int ti = e / p.dk, j = e % p.dk, t = t0 + ti;
    smem[l.q + ti * l.q_stride + j] =
        t < p.tokens ? to_float(Q[((int64_t(b) * p.tokens + t) * q_heads + q_head) * p.dk + j]) : 0.f;
  }
  for (int e = threadIdx.x; e < tile * p.dv; e += kThreads) {
    const int ti = e / p.dv, c = e % p.dv, t = t0 + ti;
    float x = 0.f;
    if (t < p.tokens) {
      const int64_t row = (int64_t(b) * p.tokens + t) * p.heads + h;
      x = d_u[row * p.dv + c];
      if (m == 1) x *= -lambda_of(p, row);
    }
    smem[l.u + ti * l.u_stride + c] = x;
  }
  for (int ti = threadIdx.x; ti < tile; ti += kThreads) {
    const int t = t0 + ti;
    const int64_t row = (int64_t(b) * p.tokens + t) * p.heads + h;
    smem[l.lse + ti] = t < p.tokens ? bp.log_sum_exp[row * maps + m] : 0.f;
    smem[l.delta + ti] = t < p.tokens ? delta[row * maps + m] : 0.f;
  }
}

// Loads keys [s0, s0 + tile) of key head `key_head` (with_values: also the values of group g); keys past
// keyLength are 0 (masked anyway, and never read from a cache's stale rows).
template <typename T>
__device__ __forceinline__ void load_keys(const AttentionParams& p, const Layout& l, float* smem, int tile, int b,
                                          int key_head, int g, int s0, bool with_values) {
  const T* K = static_cast<const T*>(p.k);
  const T* V = static_cast<const T*>(p.v);
  for (int e = threadIdx.x; e < tile * p.dk; e += kThreads) {
    const int si = e / p.dk, j = e % p.dk, s = s0 + si;
    smem[l.k + si * l.k_stride + j] =
        s < p.key_length ? to_float(K[((int64_t(b) * p.keys + s) * p.key_heads + key_head) * p.dk + j]) : 0.f;
  }
  if (!with_values) return;
  for (int e = threadIdx.x; e < tile * p.dv; e += kThreads) {
    const int si = e / p.dv, c = e % p.dv, s = s0 + si;
    smem[l.v + si * l.v_stride + c] =
        s < p.key_length ? to_float(V[((int64_t(b) * p.keys + s) * p.kv_heads + g) * p.dv + c]) : 0.f;
  }
}

// ---- 2. dK and dV ---------------------------------------------------------------------------------------------

template <typename T, bool kDiff>
__global__ void __launch_bounds__(kThreads, 1)
    backward_dkdv_kernel(const AttentionBackwardParams bp, const float* __restrict__ d_u,
                         const float* __restrict__ delta, int tile) {
  extern __shared__ float smem[];
  const AttentionParams& p = bp.forward;
  const Layout l = tile_layout(tile, p.dk, p.dv);
  const int s0 = blockIdx.x * tile, g = blockIdx.y, b = blockIdx.z;
  const int maps = kDiff ? 2 : 1;
  const bool shared_keys = !kDiff || p.key_heads == p.kv_heads;
  const int group_heads = p.heads / p.kv_heads;  // heads g·G … g·G + G − 1 read kv group g (core: H % Hkv = 0)
  // Causal: key s is seen by queries t ≥ s − keyOffset; none of this tile's keys by earlier ones.
  const int t_begin = p.causal ? max(0, s0 - p.key_offset) : 0;
  const int t_end = s0 < p.key_length ? p.tokens : 0;  // a tile wholly past keyLength is never seen
  float* acc_k = smem + l.acc_k;
  float* acc_v = smem + l.acc_v;

  load_keys<T>(p, l, smem, tile, b, kDiff && !shared_keys ? 2 * g : g, g, s0, true);
  for (int e = threadIdx.x; e < tile * p.dv; e += kThreads) acc_v[e] = 0.f;
  for (int m = 0; m < maps; ++m) {
    const int key_head = kDiff && !shared_keys ? 2 * g + m : g;
    if (m > 0 && !shared_keys) load_keys<T>(p, l, smem, tile, b, key_head, g, s0, false);
    if (m == 0 || !shared_keys) {
      for (int e = threadIdx.x; e < tile * p.dk; e += kThreads) acc_k[e] = 0.f;
    }
    for (int h = g * group_heads; h < (g + 1) * group_heads; ++h) {
      for (int t0 = t_begin; t0 < t_end; t0 += tile) {
        __syncthreads();  // keys and values are loaded; the previous step's tiles are consumed
        load_queries<T, kDiff>(bp, l, smem, tile, d_u, delta, b, h, m, t0);
        __syncthreads();
        score_tile(p, l, smem, tile, t0, s0);
        __syncthreads();
        // Each thread owns fixed accumulator elements: the sums run over the tile's queries in order.
        for (int e = threadIdx.x; e < tile * p.dv; e += kThreads) {
          const int si = e / p.dv, c = e % p.dv;
          float x = 0.f;
          for (int ti = 0; ti < tile; ++ti) x = fmaf(smem[l.p + ti * tile + si], smem[l.u + ti * l.u_stride + c], x);
          acc_v[e] += x;
        }
        for (int e = threadIdx.x; e < tile * p.dk; e += kThreads) {
          const int si = e / p.dk, j = e % p.dk;
          float x = 0.f;
          for (int ti = 0; ti < tile; ++ti) x = fmaf(smem[l.ds + ti * tile + si], smem[l.q + ti * l.q_stride + j], x);
          acc_k[e] += x;
        }
      }
    }
    __syncthreads();  // every thread is done with this map's keys before the next map reloads them
    if (!shared_keys || m == maps - 1) {
      T* dk = static_cast<T*>(bp.dk);
      for (int e = threadIdx.x; e < tile * p.dk; e += kThreads) {
        const int si = e / p.dk, j = e % p.dk, s = s0 + si;
        if (s < p.keys)
          dk[((int64_t(b) * p.keys + s) * p.key_heads + key_head) * p.dk + j] = from_float<T>(p.scale * acc_k[e]);
      }
    }
  }
  T* dv = static_cast<T*>(bp.dv);
  for (int e = threadIdx.x; e < tile * p.dv; e += kThreads) {
    const int si = e / p.dv, c = e % p.dv, s = s0 + si;
    if (s < p.keys) dv[((int64_t(b) * p.keys + s) * p.kv_heads + g) * p.dv + c] = from_float<T>(acc_v[e]);
  }
}

// ---- 3. dQ -----------------------------------------------------------------------------------------------------

template <typename T, bool kDiff>
__global__ void __launch_bounds__(kThreads, 1)
    backward_dq_kernel(const AttentionBackwardParams bp, const float* __restrict__ d_u, const float* __restrict__ delta,
                       int tile) {
  extern __shared__ float smem[];
  const AttentionParams& p = bp.forward;
  const Layout l = tile_layout(tile, p.dk, p.dv);
  const int t0 = blockIdx.x * tile, h = blockIdx.y, b = blockIdx.z;
  const int maps = kDiff ? 2 : 1;
  const bool shared_keys = !kDiff || p.key_heads == p.kv_heads;
  const int g = static_cast<int>(int64_t(h) * p.kv_heads / p.heads);
  const int q_heads = kDiff ? 2 * p.heads : p.heads;
  // Keys any query of the tile can see.
  const int key_end = p.causal ? min(p.key_length, p.key_offset + min(t0 + tile, p.tokens)) : p.key_length;
  float* acc = smem + l.acc_k;
  T* dq = static_cast<T*>(bp.dq);

  for (int m = 0; m < maps; ++m) {
    const int key_head = kDiff && !shared_keys ? 2 * g + m : g;
    __syncthreads();  // the previous map's tiles are consumed
    load_queries<T, kDiff>(bp, l, smem, tile, d_u, delta, b, h, m, t0);
    for (int e = threadIdx.x; e < tile * p.dk; e += kThreads) acc[e] = 0.f;
    for (int s0 = 0; s0 < key_end; s0 += tile) {
      __syncthreads();  // the previous key tile is consumed
      load_keys<T>(p, l, smem, tile, b, key_head, g, s0, true);
      __syncthreads();
      score_tile(p, l, smem, tile, t0, s0);
      __syncthreads();
      for (int e = threadIdx.x; e < tile * p.dk; e += kThreads) {
        const int ti = e / p.dk, j = e % p.dk;
        float x = 0.f;
        for (int si = 0; si < tile; ++si) x = fmaf(smem[l.ds + ti * tile + si], smem[l.k + si * l.k_stride + j], x);
        acc[e] += x;
      }
    }
    const int q_head = kDiff ? 2 * h + m : h;
    for (int e = threadIdx.x; e < tile * p.dk; e += kThreads) {
      const int ti = e / p.dk, j = e % p.dk, t = t0 + ti;
      if (t < p.tokens)
        dq[((int64_t(b) * p.tokens + t) * q_heads + q_head) * p.dk + j] = from_float<T>(p.scale * acc[e]);
    }
  }
}

// ---- 4. sums over rows -----------------------------------------------------------------------------------------

// dλ of head h (a per-head λ): Σ over (b, t) of dλ_row.
struct LambdaTerm {
  const float* d_lambda_rows;
  int heads;
  __device__ float operator()(int64_t bt, int h) const { return d_lambda_rows[bt * heads + h]; }
};

// dW[c] / outputScale: Σ over rows of dOut ⊙ u·ρ.
template <typename T>
struct NormWeightTerm {
  AttentionParams p;
  const T* d_out;
  const float* map_outputs;
  const float* rho;
  __device__ float operator()(int64_t row, int c) const {
    const float* a = map_outputs + row * 2 * p.dv;
    const float u = a[c] - lambda_of(p, row) * a[p.dv + c];
    return to_float(d_out[row * p.dv + c]) * u * rho[row];
  }
};

template <typename T, bool kDiff>
cudaError_t launch_backward(const AttentionBackwardParams& bp, int tile, cudaStream_t stream) {
  const AttentionParams& p = bp.forward;
  const int64_t rows = int64_t(p.batch) * p.tokens * p.heads;
  const int maps = kDiff ? 2 : 1;
  const bool want_rho = kDiff && p.norm && bp.d_norm_weight;
  const bool per_head_lambda = kDiff && !p.lambda_per_token;
  // Workspace (float32): dU [rows, dv], D [rows, maps], ρ [rows], dλ_row [rows].
  const size_t floats = size_t(rows) * (p.dv + maps + (want_rho ? 1 : 0) + (per_head_lambda ? 1 : 0));
  float* workspace = nullptr;
  cudaError_t e = cudaSuccess;
  if (floats > 0) {
    e = allocate_async(reinterpret_cast<void**>(&workspace), floats * sizeof(float), stream);
    if (e != cudaSuccess) return e;
  }
  float* d_u = workspace;
  float* delta = d_u + rows * p.dv;
  float* rho = want_rho ? delta + rows * maps : nullptr;
  float* d_lambda_rows = per_head_lambda ? delta + rows * maps + (want_rho ? rows : 0) : nullptr;

  const size_t shared = size_t(tile_layout(tile, p.dk, p.dv).total) * sizeof(float);
  const auto dkdv = backward_dkdv_kernel<T, kDiff>;
  const auto dq = backward_dq_kernel<T, kDiff>;
  if (shared > 48 * 1024) {
    e = cudaFuncSetAttribute(dkdv, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
    if (e == cudaSuccess)
      e = cudaFuncSetAttribute(dq, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
  }
  if (e == cudaSuccess && rows > 0) {
    backward_rows_kernel<T, kDiff><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(bp, d_u, delta, rho,
                                                                                           d_lambda_rows);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess && p.keys > 0) {
    const dim3 grid(static_cast<unsigned>((p.keys + tile - 1) / tile), p.kv_heads, p.batch);
    dkdv<<<grid, kThreads, shared, stream>>>(bp, d_u, delta, tile);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess && p.tokens > 0) {
    const dim3 grid(static_cast<unsigned>((p.tokens + tile - 1) / tile), p.heads, p.batch);
    dq<<<grid, kThreads, shared, stream>>>(bp, d_u, delta, tile);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess && per_head_lambda) {
    e = column_sums(LambdaTerm{d_lambda_rows, p.heads}, int64_t(p.batch) * p.tokens, p.heads, 1.f, bp.d_lambda,
                    p.lambda_dtype, stream);
  }
  if (e == cudaSuccess && want_rho) {
    const NormWeightTerm<T> term{p, static_cast<const T*>(bp.d_out), bp.map_outputs, rho};
    e = column_sums(term, rows, p.dv, p.output_scale, bp.d_norm_weight, p.norm_weight_dtype, stream);
  }
  if (workspace) {
    const cudaError_t f = cudaFreeAsync(workspace, stream);  // stream-ordered: after the kernels above
    if (e == cudaSuccess) e = f;
  }
  return e;
}

}  // namespace

int attention_backward_tile(int dk, int dv) {
  for (int tile = 32; tile >= 4; tile /= 2) {
    if (size_t(tile_layout(tile, dk, dv).total) * sizeof(float) <= kSharedBudget) return tile;
  }
  return 0;
}

cudaError_t attention_backward(const AttentionBackwardParams& bp, cudaStream_t stream) {
  const AttentionParams& p = bp.forward;
  const int tile = attention_backward_tile(p.dk, p.dv);
  if (tile == 0 || p.kv_heads < 1 || p.heads % p.kv_heads != 0) return cudaErrorInvalidValue;
  DTX_DISPATCH_FLOAT(p.dtype, T, {
    return p.diff ? launch_backward<T, true>(bp, tile, stream) : launch_backward<T, false>(bp, tile, stream);
  });
  return cudaErrorInvalidValue;
}

}  // namespace dtx
