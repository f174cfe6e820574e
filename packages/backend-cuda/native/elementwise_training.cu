// Elementwise kernels of training: exp, mul and scale (the gradient rules' helpers, and DIFF V1's λ =
// exp(λq1·λk1) − exp(λq2·λk2) + λinit even when only inferring), swiglu's backward, and the AdamW step in place.
// Memory-bound grid-stride loops over 64-bit indices, float32 arithmetic, stored in the input's dtype.
#include "common.cuh"
#include "training.h"

namespace dtx {
namespace {

constexpr int kThreads = 256;

#define DTX_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <typename T>
__global__ void exp_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n) {
  DTX_GRID_STRIDE(i, n) out[i] = from_float<T>(expf(to_float(x[i])));  // expf, not __expf: ≤ 2 ulp over the range
}

template <typename T>
__global__ void mul_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out, int64_t n) {
  DTX_GRID_STRIDE(i, n) out[i] = from_float<T>(to_float(a[i]) * to_float(b[i]));
}

template <typename T>
__global__ void scale_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, float alpha, float beta) {
  DTX_GRID_STRIDE(i, n) out[i] = from_float<T>(fmaf(alpha, to_float(x[i]), beta));
}

// s = σ(gate): dGate = dy·up·s·(1 + gate·(1 − s)), dUp = dy·gate·s. For gate → −∞, e^(−gate) overflows to +∞
// and s is exactly 0, so both gradients are 0 (not NaN); for gate → +∞, s = 1.
template <typename T>
__global__ void swiglu_backward_kernel(const T* __restrict__ gate, const T* __restrict__ up, const T* __restrict__ dy,
                                       T* __restrict__ d_gate, T* __restrict__ d_up, int64_t n) {
  DTX_GRID_STRIDE(i, n) {
    const float g = to_float(gate[i]), u = to_float(up[i]), d = to_float(dy[i]);
    const float s = 1.f / (1.f + expf(-g));
    d_gate[i] = from_float<T>(d * u * s * fmaf(g, 1.f - s, 1.f));
    d_up[i] = from_float<T>(d * g * s);
  }
}

template <typename T>
__global__ void adamw_kernel(T* __restrict__ param, const T* __restrict__ grad, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, AdamWParams a) {
  DTX_GRID_STRIDE(i, n) {
    const float g = a.grad_scale * to_float(grad[i]);
    const float m1 = fmaf(a.beta1, m[i], (1.f - a.beta1) * g);
    const float v1 = fmaf(a.beta2, v[i], (1.f - a.beta2) * g * g);
    m[i] = m1;
    v[i] = v1;
    const float denominator = sqrtf(v1) * a.inverse_correction2 + a.eps;
    param[i] = from_float<T>(to_float(param[i]) * a.decay - a.step_size * (m1 / denominator));
  }
}

#undef DTX_GRID_STRIDE

}  // namespace

cudaError_t elementwise_exp(const void* x, void* out, int64_t n, int dtype, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  DTX_DISPATCH_FLOAT(dtype, T,
                     exp_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(static_cast<const T*>(x),
                                                                                     static_cast<T*>(out), n));
  return cudaGetLastError();
}

cudaError_t elementwise_mul(const void* a, const void* b, void* out, int64_t n, int dtype, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  DTX_DISPATCH_FLOAT(dtype, T,
                     mul_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
                         static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), n));
  return cudaGetLastError();
}

cudaError_t elementwise_scale(const void* x, void* out, int64_t n, float alpha, float beta, int dtype,
                              cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  DTX_DISPATCH_FLOAT(dtype, T,
                     scale_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
                         static_cast<const T*>(x), static_cast<T*>(out), n, alpha, beta));
  return cudaGetLastError();
}

cudaError_t swiglu_backward(const void* gate, const void* up, const void* dy, void* d_gate, void* d_up, int64_t n,
                            int dtype, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  DTX_DISPATCH_FLOAT(dtype, T,
                     swiglu_backward_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
                         static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<const T*>(dy),
                         static_cast<T*>(d_gate), static_cast<T*>(d_up), n));
  return cudaGetLastError();
}

cudaError_t adamw(void* param, const void* grad, float* m, float* v, int64_t n, const AdamWParams& a, int dtype,
                  cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  DTX_DISPATCH_FLOAT(dtype, T,
                     adamw_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
                         static_cast<T*>(param), static_cast<const T*>(grad), m, v, n, a));
  return cudaGetLastError();
}

}  // namespace dtx
