// The attention dispatcher and the SIMT attention kernel every dtype and head width can use.
//
// Paths (attention_plan):
//   flash  both kernels in every dtype (float32 as 3xTF32) for the head widths of flash.cuh, any T, when its
//          shared memory fits the device: the fused tensor-core kernel.
//   rows   everything else, and everything under DIFFTX_CUDA_ATTENTION=simt: one block per query row (b, t, h),
//          streaming keys in chunks of 128 with an online softmax for both maps in float32; each chunk's key
//          rows are staged through shared memory by coalesced loads, its value rows read once for both maps.
// Either path splits the keys of each row across several blocks when its blocks alone would leave most of the
// device idle (decoding one token, or a short prefill against a long KV cache); a combine kernel then merges
// the partials (flash-decoding). No path ever stores a T×S matrix.
#include "attention.cuh"
#include "common.cuh"
#include "flash.cuh"

namespace dtx {
namespace {

constexpr int kThreads = 128;  // per block of the rows kernel
constexpr int kChunk = 128;    // keys scored per step: one per thread
constexpr int kCols = 8;       // value columns per thread: dv ≤ kThreads·kCols = 1024
constexpr int kSlab = 32;      // key dimensions staged in shared memory at a time
constexpr int kSlabStride = kSlab + 1;  // thread j reads row j: rows one bank apart

// Per (row, split) partial result: m1, l1, m2, l2, then o1[dv] and o2[dv] (unnormalised, relative to m).
__host__ __device__ inline int64_t partial_floats(int dv) { return 4 + 2 * int64_t(dv); }

struct RowGeometry {
  int b, t, h, group;
  int end;  // keys [0, end) are visible to this query row
};

__device__ __forceinline__ RowGeometry row_geometry(const AttentionParams& p, int64_t row) {
  RowGeometry r;
  r.h = static_cast<int>(row % p.heads);
  r.t = static_cast<int>((row / p.heads) % p.tokens);
  r.b = static_cast<int>(row / (int64_t(p.heads) * p.tokens));
  r.group = static_cast<int>(int64_t(r.h) * p.kv_heads / p.heads);
  r.end = p.causal ? min(p.key_length, p.key_offset + r.t + 1) : p.key_length;
  return r;
}

// Turns a row's accumulated maps into its output: o1/l1 − λ·o2/l2 (diff) or o1/l1, then the fused RMSNorm
// × weight × output scale, stored as T; and, when asked, the statistics a backward needs (each map's
// log-sum-exp m + ln l and its own output o/l). Called by all kThreads threads of the block.
template <typename T, bool kDiff>
__device__ __forceinline__ void finish_row(const AttentionParams& p, const RowGeometry& r, int64_t row, const float (&o1)[kCols],
                           const float (&o2)[kCols], float m1, float l1, float m2, float l2, float* scratch) {
  if (p.log_sum_exp && threadIdx.x == 0) {
    p.log_sum_exp[row * (kDiff ? 2 : 1)] = m1 + logf(l1);
    if (kDiff) p.log_sum_exp[row * 2 + 1] = m2 + logf(l2);
  }
  if (kDiff && p.map_outputs) {
    float* maps = p.map_outputs + row * 2 * p.dv;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = threadIdx.x + i * kThreads;
      if (c >= p.dv) continue;
      maps[c] = o1[i] / l1;
      maps[p.dv + c] = o2[i] / l2;
    }
  }
  float lambda = 0.f;
  if (kDiff) {
    const int64_t li = p.lambda_per_token ? (int64_t(r.b) * p.tokens + r.t) * p.heads + r.h : r.h;
    lambda = load_any(p.lambda, p.lambda_dtype, li);
  }
  const float inverse1 = 1.f / l1;
  const float weight2 = kDiff ? lambda / l2 : 0.f;
  float value[kCols];
  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < kCols; ++i) {
    value[i] = o1[i] * inverse1 - (kDiff ? o2[i] * weight2 : 0.f);
    if (threadIdx.x + i * kThreads < p.dv) squares += value[i] * value[i];
  }
  float gain = 1.f;
  const bool norm = kDiff && p.norm;
  if (norm) gain = p.output_scale * rsqrtf(block_reduce<false>(squares, scratch) / p.dv + p.eps);
  T* out = static_cast<T*>(p.out) + row * p.dv;
#pragma unroll
  for (int i = 0; i < kCols; ++i) {
    const int c = threadIdx.x + i * kThreads;
    if (c >= p.dv) continue;
    float y = value[i] * gain;
    if (norm && p.norm_weight) y *= load_any(p.norm_weight, p.norm_weight_dtype, c);
    out[c] = from_float<T>(y);
  }
}

// Online-softmax step of one map for one chunk: `score` is this thread's key score (−∞ past the chunk);
// replaces it in `probabilities` by e^(score − m'), rescales the running sum, and returns the factor the
// accumulators must be multiplied by.
__device__ __forceinline__ float online_step(float score, float& m, float& l, float* probabilities, float* scratch) {
  const float chunk_max = block_reduce<true>(score, scratch);
  const float m_new = fmaxf(m, chunk_max);  // finite: every chunk holds at least one visible key
  const float alpha = expf(m - m_new);      // m = −∞ on the first chunk: alpha = 0
  const float probability = expf(score - m_new);
  probabilities[threadIdx.x] = probability;
  l = l * alpha + block_reduce<false>(probability, scratch);
  m = m_new;
  return alpha;
}

template <typename T, bool kDiff>
__global__ void __launch_bounds__(kThreads) rows_kernel(const AttentionParams p, int splits, float* workspace) {
  extern __shared__ float smem[];
  float* q1s = smem;                         // [dk]
  float* q2s = q1s + p.dk;                   // [dk]
  float* p1s = q2s + p.dk;                   // [kChunk]
  float* p2s = p1s + kChunk;                 // [kChunk]
  float* scratch = p2s + kChunk;             // [32]
  float* keys1 = scratch + 32;               // [kChunk][kSlabStride]
  float* keys2 = keys1 + kChunk * kSlabStride;  // [kChunk][kSlabStride] (diff)

  const int64_t row = blockIdx.x;
  const int split = blockIdx.y;
  const RowGeometry r = row_geometry(p, row);
  const T* Q = static_cast<const T*>(p.q);
  const T* K = static_cast<const T*>(p.k);
  const T* V = static_cast<const T*>(p.v);
  const int q_heads = kDiff ? 2 * p.heads : p.heads;
  const T* q1 = Q + ((int64_t(r.b) * p.tokens + r.t) * q_heads + (kDiff ? 2 * r.h : r.h)) * p.dk;
  const bool shared_keys = p.key_heads == p.kv_heads;
  const int key_head1 = kDiff && !shared_keys ? 2 * r.group : r.group;
  const int key_head2 = kDiff && !shared_keys ? 2 * r.group + 1 : r.group;
  const int64_t key_stride = int64_t(p.key_heads) * p.dk;
  const T* k1 = K + (int64_t(r.b) * p.keys * p.key_heads + key_head1) * p.dk;
  const T* k2 = K + (int64_t(r.b) * p.keys * p.key_heads + key_head2) * p.dk;
  const int64_t value_stride = int64_t(p.kv_heads) * p.dv;
  const T* v = V + (int64_t(r.b) * p.keys * p.kv_heads + r.group) * p.dv;

  for (int i = threadIdx.x; i < p.dk; i += kThreads) {
    q1s[i] = to_float(q1[i]);
    if (kDiff) q2s[i] = to_float(q1[p.dk + i]);
  }

  const int per_split = (r.end + splits - 1) / splits;
  const int lo = split * per_split;
  const int hi = min(r.end, lo + per_split);

  float m1 = -INFINITY, l1 = 0.f, m2 = -INFINITY, l2 = 0.f;
  float o1[kCols] = {}, o2[kCols] = {};
  for (int c0 = lo; c0 < hi; c0 += kChunk) {
    const int count = min(kChunk, hi - c0);
    __syncthreads();  // q is in shared memory; the previous chunk's probabilities are consumed
    // Scores: thread j takes key c0 + j. Its key row is staged through shared memory kSlab dimensions at a time,
    // loaded by consecutive threads from consecutive addresses (a thread reading its own row would touch a
    // different row per lane and instruction).
    float d1 = 0.f, d2 = 0.f;
    for (int d0 = 0; d0 < p.dk; d0 += kSlab) {
      const int width = min(kSlab, p.dk - d0);
      if (d0 > 0) __syncthreads();  // the previous slab is consumed
      for (int e = threadIdx.x; e < count * width; e += kThreads) {
        const int key = e / width, column = e % width;
        const int64_t offset = (c0 + int64_t(key)) * key_stride + d0 + column;
        keys1[key * kSlabStride + column] = to_float(k1[offset]);
        if (kDiff) keys2[key * kSlabStride + column] = to_float(k2[offset]);
      }
      __syncthreads();
      if (threadIdx.x < count) {
        const float* key1 = keys1 + threadIdx.x * kSlabStride;
        const float* key2 = keys2 + threadIdx.x * kSlabStride;
        for (int c = 0; c < width; ++c) {
          d1 = fmaf(q1s[d0 + c], key1[c], d1);
          if (kDiff) d2 = fmaf(q2s[d0 + c], key2[c], d2);
        }
      }
    }
    const float score1 = threadIdx.x < count ? p.scale * d1 : -INFINITY;
    const float score2 = threadIdx.x < count ? p.scale * d2 : -INFINITY;
    const float alpha1 = online_step(score1, m1, l1, p1s, scratch);
    const float alpha2 = kDiff ? online_step(score2, m2, l2, p2s, scratch) : 0.f;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = threadIdx.x + i * kThreads;
      if (c >= p.dv) continue;
      float a1 = 0.f, a2 = 0.f;
      const T* column = v + int64_t(c0) * value_stride + c;
      for (int j = 0; j < count; ++j) {
        const float x = to_float(column[j * value_stride]);  // one read of the value row feeds both maps
        a1 = fmaf(p1s[j], x, a1);
        if (kDiff) a2 = fmaf(p2s[j], x, a2);
      }
      o1[i] = o1[i] * alpha1 + a1;
      if (kDiff) o2[i] = o2[i] * alpha2 + a2;
    }
  }

  if (splits == 1) {
    finish_row<T, kDiff>(p, r, row, o1, o2, m1, l1, m2, l2, scratch);
    return;
  }
  float* partial = workspace + (row * splits + split) * partial_floats(p.dv);
  if (threadIdx.x == 0) {
    partial[0] = m1;
    partial[1] = l1;
    partial[2] = m2;
    partial[3] = l2;
  }
#pragma unroll
  for (int i = 0; i < kCols; ++i) {
    const int c = threadIdx.x + i * kThreads;
    if (c >= p.dv) continue;
    partial[4 + c] = o1[i];
    partial[4 + p.dv + c] = o2[i];
  }
}

// Merges the splits of each row (a split with no keys has m = −∞ and weighs nothing), then finishes it.
template <typename T, bool kDiff>
__global__ void __launch_bounds__(kThreads) combine_kernel(const AttentionParams p, int splits,
                                                           const float* __restrict__ workspace) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const RowGeometry r = row_geometry(p, row);
  const float* partials = workspace + row * splits * partial_floats(p.dv);
  float m1 = -INFINITY, m2 = -INFINITY;
  for (int s = 0; s < splits; ++s) {
    m1 = fmaxf(m1, partials[s * partial_floats(p.dv)]);
    m2 = fmaxf(m2, partials[s * partial_floats(p.dv) + 2]);
  }
  float l1 = 0.f, l2 = 0.f, o1[kCols] = {}, o2[kCols] = {};
  for (int s = 0; s < splits; ++s) {
    const float* partial = partials + s * partial_floats(p.dv);
    const float w1 = partial[1] > 0.f ? expf(partial[0] - m1) : 0.f;
    const float w2 = kDiff && partial[3] > 0.f ? expf(partial[2] - m2) : 0.f;
    l1 += partial[1] * w1;
    l2 += partial[3] * w2;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = threadIdx.x + i * kThreads;
      if (c >= p.dv) continue;
      o1[i] += partial[4 + c] * w1;
      if (kDiff) o2[i] += partial[4 + p.dv + c] * w2;
    }
  }
  finish_row<T, kDiff>(p, r, row, o1, o2, m1, l1, m2, l2, scratch);
}

int64_t query_rows(const AttentionParams& p) { return int64_t(p.batch) * p.tokens * p.heads; }

// Keys the longest-reaching query row sees.
int visible_keys(const AttentionParams& p) {
  return p.causal ? min(p.key_length, p.key_offset + p.tokens) : p.key_length;
}

// Rows kernel: blocks per row, enough for about four blocks per multiprocessor, each with at least 256 keys.
int rows_split_count(const AttentionParams& p, int multiprocessors) {
  const int64_t rows = query_rows(p);
  const int64_t target = 4 * int64_t(multiprocessors > 0 ? multiprocessors : 1);
  if (rows >= target) return 1;
  int64_t splits = (target + rows - 1) / rows;
  const int64_t by_keys = (visible_keys(p) + 255) / 256;
  if (splits > by_keys) splits = by_keys;
  if (splits > 64) splits = 64;
  return splits < 1 ? 1 : static_cast<int>(splits);
}

// Flash kernel: split the keys when B·H·⌈T/64⌉ blocks are fewer than two per multiprocessor, into enough shares
// for about two blocks per multiprocessor, each share at least two key tiles (at most 64 shares).
int flash_split_count(const AttentionParams& p, int keys_per_tile, int multiprocessors) {
  const int64_t blocks = int64_t(p.batch) * p.heads * ((p.tokens + 63) / 64);
  const int64_t target = 2 * int64_t(multiprocessors > 0 ? multiprocessors : 1);
  if (blocks >= target) return 1;
  int64_t splits = (target + blocks - 1) / blocks;
  const int64_t tiles = (visible_keys(p) + keys_per_tile - 1) / keys_per_tile;
  if (splits > tiles / 2) splits = tiles / 2;
  if (splits > 64) splits = 64;
  return splits < 1 ? 1 : static_cast<int>(splits);
}

size_t rows_shared_bytes(const AttentionParams& p, bool diff) {
  return (2 * size_t(p.dk) + 2 * kChunk + 32 + (diff ? 2 : 1) * size_t(kChunk) * kSlabStride) * sizeof(float);
}

// Merges the splits' partials of every row and finishes the rows, then frees the workspace (stream-ordered:
// it returns to the pool after the combine kernel has read it).
template <typename T, bool kDiff>
cudaError_t combine_and_free(const AttentionParams& p, int splits, float* workspace, cudaError_t e,
                             cudaStream_t stream) {
  if (e == cudaSuccess) {
    combine_kernel<T, kDiff><<<static_cast<unsigned>(query_rows(p)), kThreads, 0, stream>>>(p, splits, workspace);
    e = cudaGetLastError();
  }
  const cudaError_t f = cudaFreeAsync(workspace, stream);
  return e == cudaSuccess ? f : e;
}

cudaError_t allocate_partials(const AttentionParams& p, int splits, float** workspace, cudaStream_t stream) {
  const size_t bytes = size_t(query_rows(p)) * splits * partial_floats(p.dv) * sizeof(float);
  return allocate_async(reinterpret_cast<void**>(workspace), bytes, stream);
}

template <typename T, bool kDiff>
cudaError_t launch_rows(const AttentionParams& p, int splits, cudaStream_t stream) {
  const int64_t rows = query_rows(p);
  const size_t shared = rows_shared_bytes(p, kDiff);
  if (shared > 48 * 1024) {
    const cudaError_t e =
        cudaFuncSetAttribute(rows_kernel<T, kDiff>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
    if (e != cudaSuccess) return e;
  }
  float* workspace = nullptr;
  if (splits > 1) {
    const cudaError_t e = allocate_partials(p, splits, &workspace, stream);
    if (e != cudaSuccess) return e;
  }
  rows_kernel<T, kDiff><<<dim3(static_cast<unsigned>(rows), splits), kThreads, shared, stream>>>(p, splits, workspace);
  const cudaError_t e = cudaGetLastError();
  return splits > 1 ? combine_and_free<T, kDiff>(p, splits, workspace, e, stream) : e;
}

template <typename T, bool kDiff>
cudaError_t launch_flash(const AttentionParams& p, const AttentionPlan& plan, cudaStream_t stream) {
  flash::Launch launch{plan.stages, plan.splits, nullptr};
  if (plan.splits > 1) {
    const cudaError_t e = allocate_partials(p, plan.splits, &launch.workspace, stream);
    if (e != cudaSuccess) return e;
  }
  cudaError_t e = cudaErrorInvalidValue;
  if (p.dtype == kFloat16) e = flash_attention_f16(p, launch, stream);
  else if (p.dtype == kBFloat16) e = flash_attention_bf16(p, launch, stream);
  else if (p.dtype == kFloat32) e = flash_attention_f32(p, launch, stream);
  return plan.splits > 1 ? combine_and_free<T, kDiff>(p, plan.splits, launch.workspace, e, stream) : e;
}

template <typename T>
FlashShape shape_for(int maps, int dk, int dv, int key_maps, int stages) {
  return flash::shape_of<T>(maps, dk, dv, key_maps, stages);
}

}  // namespace

FlashShape flash_shape(int dtype, int maps, int dk, int dv, int key_maps, int stages) {
  switch (dtype) {
    case kFloat16: return shape_for<__half>(maps, dk, dv, key_maps, stages);
    case kBFloat16: return shape_for<__nv_bfloat16>(maps, dk, dv, key_maps, stages);
    case kFloat32: return shape_for<float>(maps, dk, dv, key_maps, stages);
    default: return FlashShape{0, 0, 0};
  }
}

AttentionPlan attention_plan(const AttentionParams& p, bool force_simt, const DeviceLimits& device) {
  const int maps = p.diff ? 2 : 1;
  const int key_maps = p.diff && p.key_heads != p.kv_heads ? 2 : 1;
  if (!force_simt) {
    const FlashShape two = flash_shape(p.dtype, maps, p.dk, p.dv, key_maps, 2);
    if (two.shared_bytes > 0 && two.shared_bytes <= size_t(device.shared_per_block)) {
      const FlashShape three = flash_shape(p.dtype, maps, p.dk, p.dv, key_maps, 3);
      const int stages = three.shared_bytes <= size_t(device.shared_per_block) ? 3 : 2;
      return AttentionPlan{kPathFlash, flash_split_count(p, two.keys_per_tile, device.multiprocessors), stages};
    }
  }
  return AttentionPlan{kPathRows, rows_split_count(p, device.multiprocessors), 0};
}

cudaError_t attention(const AttentionParams& p, bool force_simt, const DeviceLimits& device, cudaStream_t stream) {
  if (query_rows(p) == 0 || p.dv == 0) return cudaSuccess;
  if (p.dv > kThreads * kCols) return cudaErrorInvalidValue;  // the addon checks this first, with a message
  const AttentionPlan plan = attention_plan(p, force_simt, device);
  DTX_DISPATCH_FLOAT(p.dtype, T, {
    if (plan.path == kPathFlash)
      return p.diff ? launch_flash<T, true>(p, plan, stream) : launch_flash<T, false>(p, plan, stream);
    return p.diff ? launch_rows<T, true>(p, plan.splits, stream) : launch_rows<T, false>(p, plan.splits, stream);
  });
  return cudaErrorInvalidValue;
}

}  // namespace dtx
