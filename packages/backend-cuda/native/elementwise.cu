// Elementwise kernels: add (residual), swiglu (feed-forward gate), sigmoid (V2's per-token λ), and the
// dtype conversion that uploads and readback use. Memory-bound: grid-stride loops over 64-bit indices.
#include "common.cuh"

namespace dtx {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void add_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_float<T>(to_float(a[i]) + to_float(b[i]));
}

template <typename T>
__global__ void swiglu_kernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_float(gate[i]);
    // g / (1 + e^(−g)): for g → −∞ the denominator overflows to +∞ and the quotient is −0, as on the CPU.
    out[i] = from_float<T>(g / (1.f + expf(-g)) * to_float(up[i]));
  }
}

template <typename T>
__global__ void sigmoid_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_float<T>(1.f / (1.f + expf(-to_float(x[i]))));
}

template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_float<D>(to_float(src[i]));
}

}  // namespace

cudaError_t add(const void* a, const void* b, void* out, int64_t n, int dtype, cudaStream_t stream) {
  DTX_DISPATCH_FLOAT(dtype, T,
                     add_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
                         static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), n));
  return cudaGetLastError();
}

cudaError_t swiglu(const void* gate, const void* up, void* out, int64_t n, int dtype, cudaStream_t stream) {
  DTX_DISPATCH_FLOAT(dtype, T,
                     swiglu_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
                         static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), n));
  return cudaGetLastError();
}

cudaError_t sigmoid(const void* x, void* out, int64_t n, int dtype, cudaStream_t stream) {
  DTX_DISPATCH_FLOAT(dtype, T,
                     sigmoid_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
                         static_cast<const T*>(x), static_cast<T*>(out), n));
  return cudaGetLastError();
}

cudaError_t convert(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n, cudaStream_t stream) {
  const unsigned blocks = blocks_for(n, kThreads);
  DTX_DISPATCH_FLOAT(src_dtype, S,
                     DTX_DISPATCH_FLOAT(dst_dtype, D,
                                        convert_kernel<S, D><<<blocks, kThreads, 0, stream>>>(
                                            static_cast<const S*>(src), static_cast<D*>(dst), n)));
  return cudaGetLastError();
}

}  // namespace dtx
