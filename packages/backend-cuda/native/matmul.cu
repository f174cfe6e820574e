// matmul: out[z] = op(a[z]) · op(b[z]), batched, either operand transposed, b shared by every batch entry.
//   float32            tiled SIMT kernel: 64×64 tile per block, 16-deep k slices in shared memory, 4×4
//                      outputs per thread, FMA accumulation.
//   float16/bfloat16   tensor cores: mma.sync m16n8k16 with float32 accumulation, 128×128 tile per block
//                      of 8 warps (64×32 each), 32-deep k slices double-buffered in shared memory, filled
//                      by cp.async where the operand is k-contiguous and K % 8 == 0 (the Linear layouts
//                      x·Wᵀ), element by element otherwise.
//   m ≤ 4 (any dtype)  GEMV: decoding's x·Wᵀ reads each weight once, so it is bound by memory, not arithmetic.
//                      a's rows are staged in shared memory a slice of k at a time; b is read coalesced (a warp
//                      per column of a k-contiguous b, 16-byte loads where aligned; a lane per column of an
//                      n-contiguous b, the block's warps splitting k); k is split across blocks when the columns
//                      alone would not give two blocks per multiprocessor, and the splits' float32 partial sums
//                      are added in split order by a second kernel (deterministic).
#include "common.cuh"
#include "mma.cuh"

namespace dtx {
namespace {

// ---- float32 -----------------------------------------------------------------------------------------

constexpr int kF32Tile = 64, kF32Depth = 16;

__global__ void __launch_bounds__(256) matmul_f32_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                                         float* __restrict__ out, int64_t batches, int m, int n, int k,
                                                         bool transpose_a, bool transpose_b, bool b_shared) {
  __shared__ float as[kF32Depth][kF32Tile + 4];
  __shared__ float bs[kF32Depth][kF32Tile + 4];
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int m0 = blockIdx.y * kF32Tile, n0 = blockIdx.x * kF32Tile;
  for (int64_t z = blockIdx.z; z < batches; z += gridDim.z) {
    const float* A = a + z * int64_t(m) * k;
    const float* B = b + (b_shared ? 0 : z * int64_t(k) * n);
    float acc[4][4] = {};
    for (int k0 = 0; k0 < k; k0 += kF32Depth) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int idx = tid + 256 * e;
        int row, kk;
        if (transpose_a) kk = idx / kF32Tile, row = idx % kF32Tile;  // a stored [K, M]: m contiguous
        else row = idx / kF32Depth, kk = idx % kF32Depth;
        const int gm = m0 + row, gk = k0 + kk;
        float v = 0.f;
        if (gm < m && gk < k) v = transpose_a ? A[int64_t(gk) * m + gm] : A[int64_t(gm) * k + gk];
        as[kk][row] = v;
        int col;
        if (transpose_b) col = idx / kF32Depth, kk = idx % kF32Depth;  // b stored [N, K]: k contiguous
        else kk = idx / kF32Tile, col = idx % kF32Tile;
        const int gn = n0 + col, gk2 = k0 + kk;
        float w = 0.f;
        if (gn < n && gk2 < k) w = transpose_b ? B[int64_t(gn) * k + gk2] : B[int64_t(gk2) * n + gn];
        bs[kk][col] = w;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kF32Depth; ++kk) {
        float x[4], y[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) x[i] = as[kk][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) y[j] = bs[kk][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(x[i], y[j], acc[i][j]);
      }
      __syncthreads();
    }
    float* C = out + z * int64_t(m) * n;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int gm = m0 + ty + 16 * i;
      if (gm >= m) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int gn = n0 + tx + 16 * j;
        if (gn < n) C[int64_t(gm) * n + gn] = acc[i][j];
      }
    }
  }
}

// ---- float16 / bfloat16 on tensor cores ----------------------------------------------------------------

constexpr int kBM = 128, kBN = 128, kBK = 32, kPad = 8, kStride = kBK + kPad;  // 80-byte rows: no bank conflicts

// Fills one k slice of a [rows × kBK] tile stored k-contiguous in shared memory (row r, k c at r·kStride + c)
// from an operand whose element (row, kk) lives at `fast` ? base[row·k + kk] (k contiguous, K % 8 == 0, 16-byte
// copies) : base[kk·ld + row] when `row_contiguous`, else base[row·k + kk].
template <typename T, bool kFast>
__device__ __forceinline__ void load_slice(T* tile, const T* base, int row0, int rows_total, int k0, int k,
                                           bool row_contiguous) {
  const int tid = threadIdx.x;
  if constexpr (kFast) {
#pragma unroll
    for (int c = tid; c < kBM * kBK / 8; c += 256) {
      const int row = c / (kBK / 8), kc = (c % (kBK / 8)) * 8;
      const int gr = row0 + row, gk = k0 + kc;
      const bool valid = gr < rows_total && gk < k;
      cp_async_16(tile + row * kStride + kc, valid ? base + int64_t(gr) * k + gk : base, valid);
    }
  } else {
    for (int e = tid; e < kBM * kBK; e += 256) {
      int row, kk;
      if (row_contiguous) kk = e / kBM, row = e % kBM;
      else row = e / kBK, kk = e % kBK;
      const int gr = row0 + row, gk = k0 + kk;
      T v = from_float<T>(0.f);
      if (gr < rows_total && gk < k) v = row_contiguous ? base[int64_t(gk) * rows_total + gr] : base[int64_t(gr) * k + gk];
      tile[row * kStride + kk] = v;
    }
  }
}

template <typename T, bool kFastA, bool kFastB>
__global__ void __launch_bounds__(256) matmul_mma_kernel(const T* __restrict__ a, const T* __restrict__ b,
                                                         T* __restrict__ out, int64_t batches, int m, int n, int k,
                                                         bool transpose_a, bool transpose_b, bool b_shared) {
  __shared__ __align__(16) T as[2][kBM * kStride];
  __shared__ __align__(16) T bs[2][kBN * kStride];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int wm = warp >> 2, wn = warp & 3;  // 2 × 4 warps, 64 × 32 outputs each
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int slices = (k + kBK - 1) / kBK;
  for (int64_t z = blockIdx.z; z < batches; z += gridDim.z) {
    const T* A = a + z * int64_t(m) * k;
    const T* B = b + (b_shared ? 0 : z * int64_t(k) * n);
    float acc[4][4][4] = {};
    // a: rows are m (transposed storage [K, M] is m-contiguous); b: rows are n ([K, N] is n-contiguous).
    load_slice<T, kFastA>(as[0], A, m0, m, 0, k, transpose_a);
    load_slice<T, kFastB>(bs[0], B, n0, n, 0, k, !transpose_b);
    cp_async_commit();
    for (int s = 0; s < slices; ++s) {
      if (s + 1 < slices) {
        load_slice<T, kFastA>(as[(s + 1) & 1], A, m0, m, (s + 1) * kBK, k, transpose_a);
        load_slice<T, kFastB>(bs[(s + 1) & 1], B, n0, n, (s + 1) * kBK, k, !transpose_b);
        cp_async_commit();
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const T* at = as[s & 1];
      const T* bt = bs[s & 1];
#pragma unroll
      for (int ks = 0; ks < kBK / 16; ++ks) {
        const int kc = ks * 16 + 2 * t;
        uint32_t fa[4][4], fb[4][2];
#pragma unroll
        for (int mi = 0; mi < 4; ++mi) {
          const int r = wm * 64 + mi * 16 + g;
          fa[mi][0] = load_pair(at + r * kStride + kc);
          fa[mi][1] = load_pair(at + (r + 8) * kStride + kc);
          fa[mi][2] = load_pair(at + r * kStride + kc + 8);
          fa[mi][3] = load_pair(at + (r + 8) * kStride + kc + 8);
        }
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          const int c = wn * 32 + ni * 8 + g;
          fb[ni][0] = load_pair(bt + c * kStride + kc);
          fb[ni][1] = load_pair(bt + c * kStride + kc + 8);
        }
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
          for (int ni = 0; ni < 4; ++ni) MmaType<T>::mma(acc[mi][ni], fa[mi], fb[ni][0], fb[ni][1]);
      }
      __syncthreads();
    }
    T* C = out + z * int64_t(m) * n;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int gm = m0 + wm * 64 + mi * 16 + g + 8 * half;
        if (gm >= m) continue;
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          const int gn = n0 + wn * 32 + ni * 8 + 2 * t;
          if (gn < n) C[int64_t(gm) * n + gn] = from_float<T>(acc[mi][ni][2 * half]);
          if (gn + 1 < n) C[int64_t(gm) * n + gn + 1] = from_float<T>(acc[mi][ni][2 * half + 1]);
        }
      }
    }
  }
}

template <typename T>
cudaError_t launch_mma(const T* a, const T* b, T* out, int64_t batches, int m, int n, int k, bool ta, bool tb,
                       bool shared, cudaStream_t stream) {
  const dim3 grid((n + kBN - 1) / kBN, (m + kBM - 1) / kBM, static_cast<unsigned>(batches < 65535 ? batches : 65535));
  // 16-byte copies need k-contiguous rows whose starts are 16-byte aligned.
  const bool fast_a = !ta && k % 8 == 0, fast_b = tb && k % 8 == 0;
  if (fast_a && fast_b) matmul_mma_kernel<T, true, true><<<grid, 256, 0, stream>>>(a, b, out, batches, m, n, k, ta, tb, shared);
  else if (fast_a) matmul_mma_kernel<T, true, false><<<grid, 256, 0, stream>>>(a, b, out, batches, m, n, k, ta, tb, shared);
  else if (fast_b) matmul_mma_kernel<T, false, true><<<grid, 256, 0, stream>>>(a, b, out, batches, m, n, k, ta, tb, shared);
  else matmul_mma_kernel<T, false, false><<<grid, 256, 0, stream>>>(a, b, out, batches, m, n, k, ta, tb, shared);
  return cudaGetLastError();
}


// ---- m ≤ 4: GEMV with optional split-K ------------------------------------------------------------------------

constexpr int kGemvThreads = 256, kGemvWarps = kGemvThreads / 32;
constexpr int kGemvSlice = 1024;  // k values of a's rows staged in shared memory at a time

// Elements of T in one 16-byte load.
template <typename T>
__host__ __device__ constexpr int vector_width() {
  return 16 / sizeof(T);
}

// One k-contiguous (b[n, :]) or n-contiguous (b[:, n]) column's dot products with the M rows of a, over k in
// [k_begin, k_end). kTransposeB: warp w of block x takes column 8x + w, its lanes striding over k (by 16-byte
// vectors when `vectors`); otherwise lane l takes column 32x + l and warp w the k ≡ w (mod 8) of each slice, the
// warps' sums added in warp order. Output: out[z, m, n] (splits == 1) or partials[split, z, m, n].
template <typename T, int M, bool kTransposeB>
__global__ void __launch_bounds__(kGemvThreads) gemv_kernel(const T* __restrict__ a, const T* __restrict__ b,
                                                            T* __restrict__ out, float* __restrict__ partials,
                                                            int64_t batches, int n, int k, bool transpose_a,
                                                            bool b_shared, int k_per_split, bool vectors) {
  __shared__ __align__(16) float as[M][kGemvSlice];
  __shared__ float sums[kTransposeB ? 1 : kGemvWarps][M][32];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int split = blockIdx.y, splits = gridDim.y;
  const int k_begin = split * k_per_split, k_end = min(k, k_begin + k_per_split);
  const int column = kTransposeB ? blockIdx.x * kGemvWarps + warp : blockIdx.x * 32 + lane;
  for (int64_t z = blockIdx.z; z < batches; z += gridDim.z) {
    const T* A = a + z * int64_t(M) * k;
    const T* B = b + (b_shared ? 0 : z * int64_t(k) * n);
    float acc[M] = {};
    for (int k0 = k_begin; k0 < k_end; k0 += kGemvSlice) {
      const int width = min(kGemvSlice, k_end - k0);
      __syncthreads();  // the previous slice (or batch entry) is consumed
      for (int e = tid; e < M * width; e += kGemvThreads) {
        const int m = e / width, kk = e % width;
        as[m][kk] = to_float(transpose_a ? A[int64_t(k0 + kk) * M + m] : A[int64_t(m) * k + k0 + kk]);
      }
      __syncthreads();
      if (column >= n) continue;
      if constexpr (kTransposeB) {
        const T* row = B + int64_t(column) * k + k0;
        if (vectors) {
          constexpr int V = vector_width<T>();
          for (int kk = lane * V; kk < width; kk += 32 * V) {
            const uint4 raw = *reinterpret_cast<const uint4*>(row + kk);
            const T* x = reinterpret_cast<const T*>(&raw);
#pragma unroll
            for (int i = 0; i < V; ++i) {
              const float xi = to_float(x[i]);
#pragma unroll
              for (int m = 0; m < M; ++m) acc[m] = fmaf(as[m][kk + i], xi, acc[m]);
            }
          }
        } else {
          for (int kk = lane; kk < width; kk += 32) {
            const float x = to_float(row[kk]);
#pragma unroll
            for (int m = 0; m < M; ++m) acc[m] = fmaf(as[m][kk], x, acc[m]);
          }
        }
      } else {
        for (int kk = warp; kk < width; kk += kGemvWarps) {
          const float x = to_float(B[int64_t(k0 + kk) * n + column]);
#pragma unroll
          for (int m = 0; m < M; ++m) acc[m] = fmaf(as[m][kk], x, acc[m]);
        }
      }
    }
    float total[M];
    if constexpr (kTransposeB) {
#pragma unroll
      for (int m = 0; m < M; ++m) total[m] = warp_sum(acc[m]);
    } else {
#pragma unroll
      for (int m = 0; m < M; ++m) sums[warp][m][lane] = acc[m];
      __syncthreads();
#pragma unroll
      for (int m = 0; m < M; ++m) {
        total[m] = 0.f;
        for (int w = 0; w < kGemvWarps; ++w) total[m] += sums[w][m][lane];
      }
    }
    const bool writer = column < n && (kTransposeB ? lane == 0 : warp == 0);
    if (writer) {
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const int64_t i = (z * M + m) * int64_t(n) + column;
        if (splits == 1) out[i] = from_float<T>(total[m]);
        else partials[int64_t(split) * batches * M * n + i] = total[m];
      }
    }
  }
}

// out[i] = Σ_split partials[split, i], in split order.
template <typename T>
__global__ void add_splits_kernel(const float* __restrict__ partials, T* __restrict__ out, int64_t count, int splits) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    float sum = 0.f;
    for (int s = 0; s < splits; ++s) sum += partials[s * count + i];
    out[i] = from_float<T>(sum);
  }
}

// Blocks along k: enough for two blocks per multiprocessor, each a whole number of slices.
struct GemvSplit {
  int splits, k_per_split;
};
GemvSplit gemv_split(int64_t column_blocks, int64_t batches, int k, int multiprocessors) {
  const int64_t blocks = column_blocks * (batches < 65535 ? batches : 65535);
  const int64_t target = 2 * int64_t(multiprocessors > 0 ? multiprocessors : 1);
  const int slices = (k + kGemvSlice - 1) / kGemvSlice;
  int64_t splits = blocks >= target ? 1 : (target + blocks - 1) / blocks;
  if (splits > slices) splits = slices;
  if (splits < 1) splits = 1;
  const int k_per_split = static_cast<int>((slices + splits - 1) / splits) * kGemvSlice;
  return GemvSplit{(k + k_per_split - 1) / k_per_split, k_per_split};
}

template <typename T, int M>
cudaError_t launch_gemv(const T* a, const T* b, T* out, int64_t batches, int n, int k, bool ta, bool tb, bool shared,
                        int multiprocessors, cudaStream_t stream) {
  const int64_t column_blocks = tb ? (n + kGemvWarps - 1) / kGemvWarps : (n + 31) / 32;
  const GemvSplit split = gemv_split(column_blocks, batches, k, multiprocessors);
  const dim3 grid(static_cast<unsigned>(column_blocks), split.splits,
                  static_cast<unsigned>(batches < 65535 ? batches : 65535));
  // 16-byte loads of b's rows: each row (and each slice of it) starts 16-byte aligned when k is a whole number
  // of vectors.
  const bool vectors = tb && k % vector_width<T>() == 0;
  float* partials = nullptr;
  const int64_t count = batches * M * int64_t(n);
  if (split.splits > 1) {
    const cudaError_t e = allocate_async(reinterpret_cast<void**>(&partials), size_t(split.splits) * count * 4, stream);
    if (e != cudaSuccess) return e;
  }
  if (tb)
    gemv_kernel<T, M, true><<<grid, kGemvThreads, 0, stream>>>(a, b, out, partials, batches, n, k, ta, shared,
                                                               split.k_per_split, vectors);
  else
    gemv_kernel<T, M, false><<<grid, kGemvThreads, 0, stream>>>(a, b, out, partials, batches, n, k, ta, shared,
                                                                split.k_per_split, false);
  cudaError_t e = cudaGetLastError();
  if (split.splits > 1) {
    if (e == cudaSuccess) {
      add_splits_kernel<T><<<blocks_for(count, 256), 256, 0, stream>>>(partials, out, count, split.splits);
      e = cudaGetLastError();
    }
    const cudaError_t f = cudaFreeAsync(partials, stream);  // stream-ordered: after the sums are read
    if (e == cudaSuccess) e = f;
  }
  return e;
}

template <typename T>
cudaError_t gemv(const void* a, const void* b, void* out, int64_t batches, int m, int n, int k, bool ta, bool tb,
                 bool shared, int multiprocessors, cudaStream_t stream) {
  const T* A = static_cast<const T*>(a);
  const T* B = static_cast<const T*>(b);
  T* C = static_cast<T*>(out);
  switch (m) {
    case 1: return launch_gemv<T, 1>(A, B, C, batches, n, k, ta, tb, shared, multiprocessors, stream);
    case 2: return launch_gemv<T, 2>(A, B, C, batches, n, k, ta, tb, shared, multiprocessors, stream);
    case 3: return launch_gemv<T, 3>(A, B, C, batches, n, k, ta, tb, shared, multiprocessors, stream);
    default: return launch_gemv<T, 4>(A, B, C, batches, n, k, ta, tb, shared, multiprocessors, stream);
  }
}

}  // namespace

cudaError_t matmul(const void* a, const void* b, void* out, int64_t batches, int m, int n, int k, bool transpose_a,
                   bool transpose_b, bool b_shared, int dtype, const DeviceLimits& device, cudaStream_t stream) {
  if (batches == 0 || m == 0 || n == 0) return cudaSuccess;
  if (k == 0) return cudaMemsetAsync(out, 0, size_t(batches) * m * n * bytes_of(dtype), stream);
  if (m <= 4) {
    DTX_DISPATCH_FLOAT(dtype, T,
                       return gemv<T>(a, b, out, batches, m, n, k, transpose_a, transpose_b, b_shared,
                                      device.multiprocessors, stream));
  }
  switch (dtype) {
    case kFloat16:
      return launch_mma(static_cast<const __half*>(a), static_cast<const __half*>(b), static_cast<__half*>(out), batches,
                        m, n, k, transpose_a, transpose_b, b_shared, stream);
    case kBFloat16:
      return launch_mma(static_cast<const __nv_bfloat16*>(a), static_cast<const __nv_bfloat16*>(b),
                        static_cast<__nv_bfloat16*>(out), batches, m, n, k, transpose_a, transpose_b, b_shared, stream);
    default: {
      const dim3 grid((n + kF32Tile - 1) / kF32Tile, (m + kF32Tile - 1) / kF32Tile,
                      static_cast<unsigned>(batches < 65535 ? batches : 65535));
      matmul_f32_kernel<<<grid, 256, 0, stream>>>(static_cast<const float*>(a), static_cast<const float*>(b),
                                                  static_cast<float*>(out), batches, m, n, k, transpose_a, transpose_b,
                                                  b_shared);
      return cudaGetLastError();
    }
  }
}

}  // namespace dtx
