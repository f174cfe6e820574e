// The launchers of the training kernels (packages/core/src/backend/kernels.ts, section "Training"), as the
// addon calls them. Same rules as kernels.h: each enqueues its work on `stream` and returns the launch
// status; float32 arithmetic; storage in the input's dtype except where the contract says float32.
// Every reduction is deterministic: its order depends on the shapes only, never on the device or on timing
// (no float atomics anywhere), so the same inputs give the same bits on every call.
#pragma once
#include "kernels.h"

namespace dtx {

// --- elementwise_training.cu -------------------------------------------------------------------------------
// (elementwise_ prefixes: a plain `exp` in namespace dtx would hide ::exp from the device code.)
cudaError_t elementwise_exp(const void* x, void* out, int64_t n, int dtype, cudaStream_t stream);
cudaError_t elementwise_mul(const void* a, const void* b, void* out, int64_t n, int dtype, cudaStream_t stream);
// out = alpha · x + beta
cudaError_t elementwise_scale(const void* x, void* out, int64_t n, float alpha, float beta, int dtype,
                              cudaStream_t stream);
cudaError_t swiglu_backward(const void* gate, const void* up, const void* dy, void* d_gate, void* d_up, int64_t n,
                            int dtype, cudaStream_t stream);

// One AdamW step in place. param and grad have `dtype`, m and v are float32. The host computes, in float64,
// decay = 1 − lr·weightDecay, step_size = lr / (1 − β1ᵗ) and inverse_correction2 = 1 / √(1 − β2ᵗ).
struct AdamWParams {
  float beta1, beta2, eps, grad_scale;
  float decay, step_size, inverse_correction2;
};
cudaError_t adamw(void* param, const void* grad, float* m, float* v, int64_t n, const AdamWParams& a, int dtype,
                  cudaStream_t stream);

// --- rows_training.cu --------------------------------------------------------------------------------------
// Σ x² → out[0] (float32): fixed blocks sum fixed ranges, then one block sums the partial sums in order.
cudaError_t sum_squares(const void* x, float* out, int64_t n, int dtype, cudaStream_t stream);
// dx (x's dtype) and, when weight is given, d_weight (the weight's dtype, summed over rows in a fixed order).
cudaError_t rms_norm_backward(const void* x, const void* weight, int weight_dtype, const void* dy, void* dx,
                              void* d_weight, int64_t rows, int width, float eps, int dtype, cudaStream_t stream);
// Fused loss and gradient of logits [rows, vocab] against int32 targets [rows]: loss [1] float32, d_logits in
// the logits' dtype. One block per row; the loss is the ordered sum of the rows' terms.
cudaError_t cross_entropy(const void* logits, const int32_t* targets, float* loss, void* d_logits, int64_t rows,
                          int vocab, int ignore_index, float scale, int dtype, cudaStream_t stream);
// The table's gradient [vocab, width] from ids [count] and dy [count, width]: (id, position) pairs are sorted
// (bitonic; the keys are unique, so the order is unique), then row v sums its rows of dy in position order.
cudaError_t embedding_backward(const int32_t* ids, const void* dy, void* out, int64_t count, int width, int vocab,
                               int dtype, cudaStream_t stream);

// --- attention_backward.cu ---------------------------------------------------------------------------------
// What the backward kernels read and write besides the forward's parameters (AttentionParams: the same q, k, v,
// λ, norm weight, shapes and mask; its `out` is unused).
struct AttentionBackwardParams {
  AttentionParams forward;
  const float* log_sum_exp;  // [rows, maps] as the forward saved it (maps = 2 for diff, 1 otherwise)
  const float* map_outputs;  // diff: [rows, 2, dv] (A then B)
  const void* output;        // standard attention: the forward's output [rows, dv] (q's dtype)
  const void* d_out;         // [rows, dv] (q's dtype)
  void* dq;                  // like q
  void* dk;                  // like k
  void* dv;                  // like v
  void* d_lambda;            // diff: like λ (λ's dtype)
  void* d_norm_weight;       // diff with a norm weight: like it (its dtype); null otherwise
};
// Keys (and queries) per tile of the SIMT backward for these head widths, so that its shared memory fits on
// every target (≤ 96 KiB); 0 when no tile fits (the caller reports the shape unsupported).
int attention_backward_tile(int dk, int dv);
cudaError_t attention_backward(const AttentionBackwardParams& p, cudaStream_t stream);

}  // namespace dtx
