// Row-wise kernels: RMSNorm, rotary embedding, embedding gather, softmax and argmax. One block per row
// for the reductions (a row of logits may be 100k wide), float32 accumulation throughout.
#include "common.cuh"

namespace dtx {
namespace {

int threads_for_width(int width) {
  int t = ((width + 31) / 32) * 32;
  return t < 32 ? 32 : (t > 256 ? 256 : t);
}

template <typename T>
__global__ void rms_norm_kernel(const T* __restrict__ x, const void* __restrict__ weight, int weight_dtype,
                                T* __restrict__ out, int width, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* in = x + row * width;
  T* y = out + row * width;
  float sum = 0.f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const float v = to_float(in[i]);
    sum += v * v;
  }
  sum = block_reduce<false>(sum, scratch);
  const float inverse = rsqrtf(sum / width + eps);
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const float w = weight ? load_any(weight, weight_dtype, i) : 1.f;
    y[i] = from_float<T>(to_float(in[i]) * inverse * w);
  }
}

// One thread per rotated pair (a, b) → (a·cos − b·sin, b·cos + a·sin); one per copied tail element.
template <typename T>
__global__ void rotary_kernel(const T* __restrict__ x, const void* __restrict__ cos_table,
                              const void* __restrict__ sin_table, int table_dtype, T* __restrict__ out, int tokens,
                              int heads, int width, int half, int position_offset, bool interleaved, int64_t rows) {
  const int per_row = half + (width - 2 * half);  // pairs, then the unrotated tail
  const int64_t total = rows * per_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / per_row;  // (b, t, h) flattened
    const int j = static_cast<int>(i - row * per_row);
    const T* in = x + row * width;
    T* y = out + row * width;
    if (j >= half) {
      const int c = 2 * half + (j - half);
      y[c] = in[c];
      continue;
    }
    const int t = static_cast<int>((row / heads) % tokens);
    const int64_t table_index = int64_t(position_offset + t) * half + j;
    const float c = load_any(cos_table, table_dtype, table_index);
    const float s = load_any(sin_table, table_dtype, table_index);
    const int first = interleaved ? 2 * j : j;
    const int second = interleaved ? first + 1 : first + half;
    const float a0 = to_float(in[first]);
    const float a1 = to_float(in[second]);
    y[first] = from_float<T>(a0 * c - a1 * s);
    y[second] = from_float<T>(a1 * c + a0 * s);
  }
}

template <typename T>
__global__ void embedding_kernel(const T* __restrict__ table, const int32_t* __restrict__ ids, T* __restrict__ out,
                                 int64_t count, int width) {
  const int64_t total = count * width;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / width;
    const int c = static_cast<int>(i - row * width);
    out[i] = table[int64_t(ids[row]) * width + c];  // ids were range-checked by core on the host
  }
}

template <typename T>
__global__ void softmax_kernel(const T* __restrict__ x, T* __restrict__ out, int width, float inverse_temperature) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* in = x + row * width;
  T* y = out + row * width;
  float m = -INFINITY;
  for (int i = threadIdx.x; i < width; i += blockDim.x) m = fmaxf(m, to_float(in[i]));
  m = block_reduce<true>(m, scratch);
  float sum = 0.f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) sum += expf((to_float(in[i]) - m) * inverse_temperature);
  sum = block_reduce<false>(sum, scratch);
  const float inverse = 1.f / sum;
  for (int i = threadIdx.x; i < width; i += blockDim.x)
    y[i] = from_float<T>(expf((to_float(in[i]) - m) * inverse_temperature) * inverse);
}

// Largest value, lowest index on ties (as a left-to-right scan with a strict comparison).
__device__ __forceinline__ void better(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

template <typename T>
__global__ void argmax_kernel(const T* __restrict__ x, int32_t* __restrict__ out, int width) {
  __shared__ float values[32];
  __shared__ int indices[32];
  const int64_t row = blockIdx.x;
  const T* in = x + row * width;
  float v = -INFINITY;
  int index = 0x7fffffff;
  for (int i = threadIdx.x; i < width; i += blockDim.x) better(v, index, to_float(in[i]), i);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) better(v, index, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, index, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    values[warp] = v;
    indices[warp] = index;
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x >> 5;
    v = lane < warps ? values[lane] : -INFINITY;
    index = lane < warps ? indices[lane] : 0x7fffffff;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) better(v, index, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, index, o));
    // A row of only −∞ or NaN finds nothing greater than its first element: index 0, as on the CPU.
    if (lane == 0) out[row] = index == 0x7fffffff ? 0 : index;
  }
}

}  // namespace

cudaError_t rms_norm(const void* x, const void* weight, int weight_dtype, void* out, int64_t rows, int width, float eps,
                     int dtype, cudaStream_t stream) {
  if (rows == 0 || width == 0) return cudaSuccess;
  const int threads = threads_for_width(width);
  DTX_DISPATCH_FLOAT(dtype, T,
                     rms_norm_kernel<T><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
                         static_cast<const T*>(x), weight, weight_dtype, static_cast<T*>(out), width, eps));
  return cudaGetLastError();
}

cudaError_t rotary(const void* x, const void* cos, const void* sin, int table_dtype, void* out, int batch, int tokens,
                   int heads, int width, int half, int position_offset, bool interleaved, int dtype,
                   cudaStream_t stream) {
  const int64_t rows = int64_t(batch) * tokens * heads;
  const int64_t work = rows * (width - half);
  if (work == 0) return cudaSuccess;
  DTX_DISPATCH_FLOAT(dtype, T,
                     rotary_kernel<T><<<blocks_for(work, 256), 256, 0, stream>>>(
                         static_cast<const T*>(x), cos, sin, table_dtype, static_cast<T*>(out), tokens, heads, width,
                         half, position_offset, interleaved, rows));
  return cudaGetLastError();
}

cudaError_t embedding(const void* table, const int32_t* ids, void* out, int64_t count, int width, int dtype,
                      cudaStream_t stream) {
  const int64_t total = count * width;
  if (total == 0) return cudaSuccess;
  DTX_DISPATCH_FLOAT(dtype, T,
                     embedding_kernel<T><<<blocks_for(total, 256), 256, 0, stream>>>(
                         static_cast<const T*>(table), ids, static_cast<T*>(out), count, width));
  return cudaGetLastError();
}

cudaError_t softmax(const void* x, void* out, int64_t rows, int width, float inverse_temperature, int dtype,
                    cudaStream_t stream) {
  if (rows == 0 || width == 0) return cudaSuccess;
  const int threads = threads_for_width(width);
  DTX_DISPATCH_FLOAT(dtype, T,
                     softmax_kernel<T><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
                         static_cast<const T*>(x), static_cast<T*>(out), width, inverse_temperature));
  return cudaGetLastError();
}

cudaError_t argmax(const void* x, int32_t* out, int64_t rows, int width, int dtype, cudaStream_t stream) {
  if (rows == 0 || width == 0) return cudaSuccess;
  const int threads = threads_for_width(width);
  DTX_DISPATCH_FLOAT(dtype, T,
                     argmax_kernel<T><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
                         static_cast<const T*>(x), out, width));
  return cudaGetLastError();
}

}  // namespace dtx
