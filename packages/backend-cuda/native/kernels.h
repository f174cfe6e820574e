// The launchers of every kernel, as the addon (addon.cc, compiled by the host compiler) calls them.
// Each launcher enqueues its work on `stream` and returns at once with the launch status; errors that
// happen while a kernel runs surface at the next synchronisation (a read or synchronize()).
// Pointers are device pointers; sizes are element counts. Every kernel computes in float32 and
// stores float32, float16 or bfloat16 (DType below); int32 appears only as token ids and argmax output.
#pragma once
#include <cuda_runtime_api.h>
#include <cstdint>

namespace dtx {

enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kInt32 = 3 };

inline int bytes_of(int dtype) { return dtype == kFloat16 || dtype == kBFloat16 ? 2 : 4; }

// What the launchers size their grids and tiles by.
struct DeviceLimits {
  int multiprocessors;
  int shared_per_block;  // bytes of dynamic shared memory one block may opt into
};

// Stream-ordered allocation of a launcher's workspace (and the addon's buffers). On out of memory, memory freed
// on the stream may still be in flight or cached by the pool: wait for the stream, give the pool's unused memory
// back to the driver, and try once more.
inline cudaError_t allocate_async(void** pointer, size_t bytes, cudaStream_t stream) {
  cudaError_t e = cudaMallocAsync(pointer, bytes, stream);
  if (e != cudaErrorMemoryAllocation) return e;
  cudaGetLastError();
  cudaStreamSynchronize(stream);
  int device = 0;
  cudaMemPool_t pool = nullptr;
  if (cudaGetDevice(&device) == cudaSuccess && cudaDeviceGetMemPool(&pool, device) == cudaSuccess)
    cudaMemPoolTrimTo(pool, 0);
  cudaGetLastError();
  return cudaMallocAsync(pointer, bytes, stream);
}

// --- elementwise.cu ---------------------------------------------------------------------------------
cudaError_t add(const void* a, const void* b, void* out, int64_t n, int dtype, cudaStream_t stream);
cudaError_t swiglu(const void* gate, const void* up, void* out, int64_t n, int dtype, cudaStream_t stream);
cudaError_t sigmoid(const void* x, void* out, int64_t n, int dtype, cudaStream_t stream);
// Converts n values between float dtypes (float32 ↔ float16/bfloat16): uploads and readback use it.
cudaError_t convert(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n, cudaStream_t stream);

// --- rows.cu: kernels that work row by row ----------------------------------------------------------
// weight may be null (= 1); it has its own dtype (core lets it differ from x's).
cudaError_t rms_norm(const void* x, const void* weight, int weight_dtype, void* out, int64_t rows, int width,
                     float eps, int dtype, cudaStream_t stream);
cudaError_t rotary(const void* x, const void* cos, const void* sin, int table_dtype, void* out, int batch, int tokens,
                   int heads, int width, int half, int position_offset, bool interleaved, int dtype,
                   cudaStream_t stream);
cudaError_t embedding(const void* table, const int32_t* ids, void* out, int64_t count, int width, int dtype,
                      cudaStream_t stream);
cudaError_t softmax(const void* x, void* out, int64_t rows, int width, float inverse_temperature, int dtype,
                    cudaStream_t stream);
cudaError_t argmax(const void* x, int32_t* out, int64_t rows, int width, int dtype, cudaStream_t stream);

// --- matmul.cu ----------------------------------------------------------------------------------------
// out[z] = op(a[z]) · op(b[z]) for z < batches; a is [M, K] (or [K, M] transposed), b [K, N] (or [N, K]);
// b_shared: one b for every z. float32 runs a tiled SIMT kernel; float16/bfloat16 tensor cores
// (mma.sync m16n8k16, float32 accumulation). m ≤ 4 (decoding's x·Wᵀ) runs a GEMV kernel in every dtype, its k
// split across blocks when the columns alone would not fill the device.
cudaError_t matmul(const void* a, const void* b, void* out, int64_t batches, int m, int n, int k, bool transpose_a,
                   bool transpose_b, bool b_shared, int dtype, const DeviceLimits& device, cudaStream_t stream);

// --- attention ----------------------------------------------------------------------------------------
// Both attention kernels of the contract. diff = true: differential attention (q has 2·heads half-heads,
// k has key_heads = 2·kv_heads per-map half-heads or kv_heads shared heads, lambda and the fused norm);
// diff = false: standard attention (q has `heads` heads, k has kv_heads heads).
struct AttentionParams {
  const void* q;
  const void* k;
  const void* v;
  const void* lambda;       // diff only: [heads] or [batch, tokens, heads]
  const void* norm_weight;  // diff only, may be null
  void* out;                // [batch, tokens, heads, dv]
  int dtype;                // of q, k, v and out
  int lambda_dtype;
  int norm_weight_dtype;
  int batch, tokens, keys;  // keys: the storage length S of k and v (a cache's capacity)
  int heads, kv_heads, key_heads;
  int dk, dv;
  bool diff;
  bool causal;
  bool lambda_per_token;
  bool norm;
  int key_offset, key_length;
  float scale, eps, output_scale;
  // What a backward needs, written only when non-null (the *WithStatistics kernels): each map's natural
  // log-sum-exp [rows, maps] (maps = 2 for diff, map 1 first) and, diff only, each map's own normalised output
  // P_m·V [rows, 2, dv], both float32; rows = (b·tokens + t)·heads + h.
  float* log_sum_exp;
  float* map_outputs;
};

// Which implementation `attention` picks; `force_simt` (DIFFTX_CUDA_ATTENTION=simt) turns tensor cores off.
// splits > 1: the keys of each query row are split across blocks and a combine kernel merges them.
enum AttentionPath : int { kPathFlash = 0, kPathRows = 1 };
struct AttentionPlan {
  int path;
  int splits;
  int stages;  // flash only: cp.async pipeline depth
};
AttentionPlan attention_plan(const AttentionParams& p, bool force_simt, const DeviceLimits& device);
cudaError_t attention(const AttentionParams& p, bool force_simt, const DeviceLimits& device, cudaStream_t stream);

}  // namespace dtx
