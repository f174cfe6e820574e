// Training kernels that reduce: sumSquares (global-norm clipping), rmsNorm's backward, the fused cross-entropy
// and embedding's backward (a deterministic scatter-add). One block per row where a row is reduced, as in
// rows.cu; every sum over rows goes through reduce.cuh (fixed order, no float atomics).
#include "common.cuh"
#include "reduce.cuh"
#include "training.h"

namespace dtx {
namespace {

int threads_for_width(int width) {
  int t = ((width + 31) / 32) * 32;
  return t < 32 ? 32 : (t > 256 ? 256 : t);
}

// ---- sumSquares --------------------------------------------------------------------------------------------

template <typename T>
struct SquareTerm {
  const T* x;
  __device__ float operator()(int64_t i) const {
    const float v = to_float(x[i]);
    return v * v;
  }
};

// ---- rmsNorm backward --------------------------------------------------------------------------------------

// y = x·ρ·w with ρ = (mean(x²) + eps)^(−½): dx = (g − n·mean(g ⊙ n))·ρ with n = x·ρ, g = dy ⊙ w. Saves ρ per row
// when the weight's gradient is wanted.
template <typename T>
__global__ void rms_norm_backward_kernel(const T* __restrict__ x, const void* __restrict__ weight, int weight_dtype,
                                         const T* __restrict__ dy, T* __restrict__ dx, float* __restrict__ rho_out,
                                         int width, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* in = x + row * width;
  const T* d = dy + row * width;
  float squares = 0.f, projection = 0.f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const float v = to_float(in[i]);
    const float w = weight ? load_any(weight, weight_dtype, i) : 1.f;
    squares += v * v;
    projection += to_float(d[i]) * w * v;
  }
  squares = block_reduce<false>(squares, scratch);
  projection = block_reduce<false>(projection, scratch);
  const float rho = rsqrtf(squares / width + eps);
  const float mean_gn = projection * rho / width;  // mean(g ⊙ n)
  T* out = dx + row * width;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const float w = weight ? load_any(weight, weight_dtype, i) : 1.f;
    const float g = to_float(d[i]) * w;
    out[i] = from_float<T>((g - to_float(in[i]) * rho * mean_gn) * rho);
  }
  if (rho_out && threadIdx.x == 0) rho_out[row] = rho;
}

// dWeight[c] = Σ_rows dy ⊙ x·ρ
template <typename T>
struct NormWeightTerm {
  const T* x;
  const T* dy;
  const float* rho;
  int width;
  __device__ float operator()(int64_t row, int c) const {
    const int64_t i = row * width + c;
    return to_float(dy[i]) * to_float(x[i]) * rho[row];
  }
};

// ---- cross-entropy -----------------------------------------------------------------------------------------

// Row n: with M = max and Σ = Σ_j e^(x_j − M) (one pass, online), the loss term is (M − x_t) + ln Σ and the
// gradient scale·(e^(x_j − M)/Σ − [j = t]); an ignored (or out-of-range) target gives 0 and a zero row.
template <typename T>
__global__ void cross_entropy_kernel(const T* __restrict__ logits, const int32_t* __restrict__ targets,
                                     float* __restrict__ row_loss, T* __restrict__ d_logits, int vocab,
                                     int ignore_index, float scale) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* x = logits + row * vocab;
  T* dx = d_logits + row * vocab;
  const int target = targets[row];
  const bool counted = target != ignore_index && target >= 0 && target < vocab;
  if (!counted) {
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) dx[j] = from_float<T>(0.f);
    if (threadIdx.x == 0) row_loss[row] = 0.f;
    return;
  }
  float m = -INFINITY, s = 0.f;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float v = to_float(x[j]);
    if (v > m) {
      s = s * expf(m - v) + 1.f;  // m = −∞ on the first value: s is 0 either way
      m = v;
    } else {
      s += expf(v - m);
    }
  }
  const float row_max = block_reduce<true>(m, scratch);
  const float total = block_reduce<false>(m == -INFINITY ? 0.f : s * expf(m - row_max), scratch);
  if (threadIdx.x == 0) row_loss[row] = (row_max - to_float(x[target])) + logf(total);
  const float inverse = 1.f / total;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float p = expf(to_float(x[j]) - row_max) * inverse;
    dx[j] = from_float<T>(scale * (j == target ? p - 1.f : p));
  }
}

struct VectorTerm {
  const float* x;
  __device__ float operator()(int64_t i) const { return x[i]; }
};

// ---- embedding backward ------------------------------------------------------------------------------------

// Key of position i: its id in the high 32 bits, i in the low ones; unique, so the sorted order is unique.
// Padding (past count) sorts last. A negative id reads as a large unsigned one: never looked up.
__global__ void embedding_keys_kernel(const int32_t* __restrict__ ids, uint64_t* __restrict__ keys, int64_t count,
                                      int64_t padded) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < padded; i += int64_t(gridDim.x) * blockDim.x)
    keys[i] = i < count ? (uint64_t(uint32_t(ids[i])) << 32) | uint64_t(i) : ~uint64_t(0);
}

// One compare-exchange step (k, j) of a bitonic sort of `padded` (a power of two) keys, ascending.
__global__ void bitonic_step_kernel(uint64_t* __restrict__ keys, int64_t padded, int64_t k, int64_t j) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < padded; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t partner = i ^ j;
    if (partner <= i) continue;
    const uint64_t a = keys[i], b = keys[partner];
    const bool ascending = (i & k) == 0;
    if ((a > b) == ascending) {
      keys[i] = b;
      keys[partner] = a;
    }
  }
}

// First index in sorted keys[0, count) whose key is ≥ value.
__device__ int64_t lower_bound(const uint64_t* keys, int64_t count, uint64_t value) {
  int64_t lo = 0, hi = count;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Block v: the positions whose id is v form one run of the sorted keys, in position order; each thread sums
// its columns of their dy rows in that order.
template <typename T>
__global__ void embedding_gather_kernel(const uint64_t* __restrict__ keys, int64_t count, const T* __restrict__ dy,
                                        T* __restrict__ out, int width) {
  __shared__ int64_t run[2];
  const int64_t v = blockIdx.x;
  if (threadIdx.x == 0) run[0] = lower_bound(keys, count, uint64_t(v) << 32);
  if (threadIdx.x == 1) run[1] = lower_bound(keys, count, uint64_t(v + 1) << 32);
  __syncthreads();
  for (int c = threadIdx.x; c < width; c += blockDim.x) {
    float s = 0.f;
    for (int64_t e = run[0]; e < run[1]; ++e) s += to_float(dy[int64_t(keys[e] & 0xffffffffu) * width + c]);
    out[v * width + c] = from_float<T>(s);
  }
}

}  // namespace

cudaError_t sum_squares(const void* x, float* out, int64_t n, int dtype, cudaStream_t stream) {
  DTX_DISPATCH_FLOAT(dtype, T, return ordered_sum(SquareTerm<T>{static_cast<const T*>(x)}, n, 1.f, out, stream));
  return cudaErrorInvalidValue;
}

cudaError_t rms_norm_backward(const void* x, const void* weight, int weight_dtype, const void* dy, void* dx,
                              void* d_weight, int64_t rows, int width, float eps, int dtype, cudaStream_t stream) {
  if (width == 0) return cudaSuccess;
  float* rho = nullptr;
  if (d_weight && rows > 0) {
    const cudaError_t e = allocate_async(reinterpret_cast<void**>(&rho), size_t(rows) * sizeof(float), stream);
    if (e != cudaSuccess) return e;
  }
  cudaError_t e = cudaSuccess;
  DTX_DISPATCH_FLOAT(dtype, T, {
    if (rows > 0) {
      rms_norm_backward_kernel<T><<<static_cast<unsigned>(rows), threads_for_width(width), 0, stream>>>(
          static_cast<const T*>(x), weight, weight_dtype, static_cast<const T*>(dy), static_cast<T*>(dx), rho, width,
          eps);
      e = cudaGetLastError();
    }
    if (e == cudaSuccess && d_weight) {
      const NormWeightTerm<T> term{static_cast<const T*>(x), static_cast<const T*>(dy), rho, width};
      e = column_sums(term, rows, width, 1.f, d_weight, weight_dtype, stream);
    }
  });
  if (rho) {
    const cudaError_t f = cudaFreeAsync(rho, stream);
    if (e == cudaSuccess) e = f;
  }
  return e;
}

cudaError_t cross_entropy(const void* logits, const int32_t* targets, float* loss, void* d_logits, int64_t rows,
                          int vocab, int ignore_index, float scale, int dtype, cudaStream_t stream) {
  if (rows == 0 || vocab == 0) return cudaMemsetAsync(loss, 0, sizeof(float), stream);
  float* row_loss = nullptr;
  cudaError_t e = allocate_async(reinterpret_cast<void**>(&row_loss), size_t(rows) * sizeof(float), stream);
  if (e != cudaSuccess) return e;
  DTX_DISPATCH_FLOAT(dtype, T, {
    cross_entropy_kernel<T><<<static_cast<unsigned>(rows), threads_for_width(vocab), 0, stream>>>(
        static_cast<const T*>(logits), targets, row_loss, static_cast<T*>(d_logits), vocab, ignore_index, scale);
  });
  e = cudaGetLastError();
  if (e == cudaSuccess) e = ordered_sum(VectorTerm{row_loss}, rows, scale, loss, stream);
  const cudaError_t f = cudaFreeAsync(row_loss, stream);
  return e != cudaSuccess ? e : f;
}

cudaError_t embedding_backward(const int32_t* ids, const void* dy, void* out, int64_t count, int width, int vocab,
                               int dtype, cudaStream_t stream) {
  const int64_t table = int64_t(vocab) * width;
  if (table == 0) return cudaSuccess;
  if (count == 0) return cudaMemsetAsync(out, 0, size_t(table) * bytes_of(dtype), stream);
  if (count > 0xffffffffll) return cudaErrorInvalidValue;  // positions are packed into 32 bits
  int64_t padded = 1;
  while (padded < count) padded <<= 1;
  uint64_t* keys = nullptr;
  cudaError_t e = allocate_async(reinterpret_cast<void**>(&keys), size_t(padded) * sizeof(uint64_t), stream);
  if (e != cudaSuccess) return e;
  const unsigned blocks = blocks_for(padded, 256);
  embedding_keys_kernel<<<blocks, 256, 0, stream>>>(ids, keys, count, padded);
  e = cudaGetLastError();
  for (int64_t k = 2; k <= padded && e == cudaSuccess; k <<= 1) {
    for (int64_t j = k >> 1; j > 0 && e == cudaSuccess; j >>= 1) {
      bitonic_step_kernel<<<blocks, 256, 0, stream>>>(keys, padded, k, j);
      e = cudaGetLastError();
    }
  }
  if (e == cudaSuccess) {
    DTX_DISPATCH_FLOAT(dtype, T, {
      embedding_gather_kernel<T><<<static_cast<unsigned>(vocab), threads_for_width(width), 0, stream>>>(
          keys, count, static_cast<const T*>(dy), static_cast<T*>(out), width);
    });
    e = cudaGetLastError();
  }
  const cudaError_t f = cudaFreeAsync(keys, stream);
  return e != cudaSuccess ? e : f;
}

}  // namespace dtx
