// Deterministic reductions shared by the training kernels: a sum over a vector (sumSquares, the loss) and
// column sums over rows (dWeight of the norms, a per-head dλ). Both run in two stages whose shapes depend only
// on the problem size, never on the device, and add in a fixed order: no float atomics, the same bits on every
// call. The terms are functors (`term(i)` or `term(row, column)`), so nothing is materialised before the sum.
// Everything here has internal linkage: each .cu file that includes it gets its own copy of the kernels.
#pragma once
#include "common.cuh"

namespace dtx {
namespace {

constexpr int kReduceThreads = 256;

// Stores x into element i of a float tensor of any float dtype (gradients of λ and of norm weights have the
// dtype of their parameter, which core lets differ from the activations').
__device__ __forceinline__ void store_any(void* p, int dtype, int64_t i, float x) {
  switch (dtype) {
    case kFloat16: static_cast<__half*>(p)[i] = __float2half_rn(x); break;
    case kBFloat16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(x); break;
    default: static_cast<float*>(p)[i] = x; break;
  }
}

// ---- Σ term(i) for i < n -------------------------------------------------------------------------------------

// Elements per stage-1 block: at least 8 per thread, and at most 1024 blocks.
inline int64_t sum_block_span(int64_t n) {
  int64_t span = (n + 1023) / 1024;
  span = (span + kReduceThreads - 1) / kReduceThreads * kReduceThreads;
  return span < 8 * kReduceThreads ? 8 * kReduceThreads : span;
}

// Block b sums elements [b·span, (b+1)·span): thread t takes t, t + 256, … in order, then a fixed tree.
template <class Term>
__global__ void __launch_bounds__(kReduceThreads) sum_partials_kernel(Term term, int64_t n, int64_t span,
                                                                      float* partials) {
  __shared__ float scratch[32];
  const int64_t begin = blockIdx.x * span;
  const int64_t end = begin + span < n ? begin + span : n;
  float s = 0.f;
  for (int64_t i = begin + threadIdx.x; i < end; i += kReduceThreads) s += term(i);
  s = block_reduce<false>(s, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// One block: out[0] = factor · Σ partials (thread t takes t, t + 256, … in order, then the same tree).
__global__ void __launch_bounds__(kReduceThreads) sum_finish_kernel(const float* __restrict__ partials, int count,
                                                                    float factor, float* __restrict__ out) {
  __shared__ float scratch[32];
  float s = 0.f;
  for (int i = threadIdx.x; i < count; i += kReduceThreads) s += partials[i];
  s = block_reduce<false>(s, scratch);
  if (threadIdx.x == 0) out[0] = factor * s;
}

// out[0] (float32) = factor · Σ_{i<n} term(i). The partial sums live in a stream-ordered temporary.
template <class Term>
cudaError_t ordered_sum(Term term, int64_t n, float factor, float* out, cudaStream_t stream) {
  if (n == 0) return cudaMemsetAsync(out, 0, sizeof(float), stream);
  const int64_t span = sum_block_span(n);
  const int blocks = static_cast<int>((n + span - 1) / span);
  float* partials = nullptr;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&partials), blocks * sizeof(float), stream);
  if (e != cudaSuccess) return e;
  sum_partials_kernel<Term><<<blocks, kReduceThreads, 0, stream>>>(term, n, span, partials);
  e = cudaGetLastError();
  if (e == cudaSuccess) {
    sum_finish_kernel<<<1, kReduceThreads, 0, stream>>>(partials, blocks, factor, out);
    e = cudaGetLastError();
  }
  const cudaError_t f = cudaFreeAsync(partials, stream);
  return e != cudaSuccess ? e : f;
}

// ---- column sums: out[c] = factor · Σ_{r<rows} term(r, c) for c < columns ------------------------------------

// Rows per stage-1 chunk: at least 64, and at most 2048 chunks (a grid's y extent is at most 65535).
inline int64_t column_chunk_rows(int64_t rows) {
  const int64_t chunk = (rows + 2047) / 2048;
  return chunk < 64 ? 64 : chunk;
}

// Thread (column c, chunk k) sums rows [k·chunk, (k+1)·chunk) of column c in order; a warp reads 32
// neighbouring columns of a row at a time.
template <class Term>
__global__ void __launch_bounds__(kReduceThreads) column_partials_kernel(Term term, int64_t rows, int columns,
                                                                         int64_t chunk, float* partials) {
  const int c = blockIdx.x * kReduceThreads + threadIdx.x;
  if (c >= columns) return;
  const int64_t begin = blockIdx.y * chunk;
  const int64_t end = begin + chunk < rows ? begin + chunk : rows;
  float s = 0.f;
  for (int64_t r = begin; r < end; ++r) s += term(r, c);
  partials[int64_t(blockIdx.y) * columns + c] = s;
}

__global__ void __launch_bounds__(kReduceThreads) column_finish_kernel(const float* __restrict__ partials, int chunks,
                                                                       int columns, float factor, void* out,
                                                                       int out_dtype) {
  const int c = blockIdx.x * kReduceThreads + threadIdx.x;
  if (c >= columns) return;
  float s = 0.f;
  for (int k = 0; k < chunks; ++k) s += partials[int64_t(k) * columns + c];
  store_any(out, out_dtype, c, factor * s);
}

// out (out_dtype, `columns` elements) = factor · column sums of term over `rows` rows.
template <class Term>
cudaError_t column_sums(Term term, int64_t rows, int columns, float factor, void* out, int out_dtype,
                        cudaStream_t stream) {
  if (columns == 0) return cudaSuccess;
  const int64_t chunk = column_chunk_rows(rows);
  const int chunks = static_cast<int>((rows + chunk - 1) / chunk);
  const unsigned column_blocks = static_cast<unsigned>((columns + kReduceThreads - 1) / kReduceThreads);
  float* partials = nullptr;
  cudaError_t e = cudaSuccess;
  if (chunks > 0) {
    e = cudaMallocAsync(reinterpret_cast<void**>(&partials), size_t(chunks) * columns * sizeof(float), stream);
    if (e != cudaSuccess) return e;
    column_partials_kernel<Term>
        <<<dim3(column_blocks, chunks), kReduceThreads, 0, stream>>>(term, rows, columns, chunk, partials);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) {
    column_finish_kernel<<<column_blocks, kReduceThreads, 0, stream>>>(partials, chunks, columns, factor, out,
                                                                       out_dtype);
    e = cudaGetLastError();
  }
  if (partials) {
    const cudaError_t f = cudaFreeAsync(partials, stream);
    if (e == cudaSuccess) e = f;
  }
  return e;
}

}  // namespace
}  // namespace dtx
