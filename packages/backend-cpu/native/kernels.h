/*
 * The kernels' entry points (the C files of ../c, and ./matmul.c in place of ../c/matmul.c), as the
 * WebAssembly module exports them: pointers are real pointers here, which the addon makes from the
 * byte offsets the TypeScript engine passes (offset 0 is null, as in the WebAssembly heap).
 */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void job_open(void);
int job_run(int thread);
int job_advance(void);

uint32_t matmul_configure(int batches, int m, int n, int k, int flags);
int matmul_prepare(const float* a, const float* b, float* c, float* scratch);
/* Native only (./matmul.c): B packed once and reused while it is unchanged. */
uint32_t matmul_packed_b_bytes(void);
int matmul_pack_b_prepare(const float* b, float* packed);
int matmul_prepare_packed(const float* a, const float* packed_b, float* c);
/* rotary on the pool (../c/rotary.c). */
int rotary_prepare(const float* x, const float* cos, const float* sin, float* y, int batch, int tokens, int heads,
                   int width, int half, int interleaved, int position_offset);

uint32_t attention_configure(int batch, int tokens, int heads, int kv_heads, int k_heads, int dk, int dv, int capacity,
                             int maps, int lambda_per_token, int causal, int key_offset, int key_length, float scale,
                             int norm, float eps, float output_scale, int statistics, int threads);
int attention_prepare(const float* q, const float* k, const float* v, const float* lambda, const float* norm_weight,
                      float* out, float* log_sum_exp, float* map_outputs, float* scratch);
uint32_t attention_backward_configure(int batch, int tokens, int heads, int kv_heads, int k_heads, int dk, int dv,
                                      int capacity, int maps, int lambda_per_token, int causal, int key_offset,
                                      int key_length, float scale, int norm, float eps, float output_scale,
                                      int threads);
int attention_backward_prepare(const float* q, const float* k, const float* v, const float* lambda,
                               const float* norm_weight, const float* log_sum_exp, const float* map_outputs,
                               const float* output, const float* d_out, float* grad_q, float* grad_k, float* grad_v,
                               float* d_lambda, float* d_norm_weight, float* scratch);
int elementwise_prepare(int kind, const float* a, const float* b, float* y, int length);
int swiglu_backward_prepare(const float* gate, const float* up, const float* dy, float* d_gate, float* d_up,
                            int length);
int rms_norm_prepare(const float* x, const float* weight, float* y, int rows, int width, float eps);
uint32_t rms_norm_backward_scratch(int rows, int width);
int rms_norm_backward_prepare(const float* x, const float* weight, const float* dy, float* dx, float* d_weight,
                              float* scratch, int rows, int width, float eps);
uint32_t embedding_backward_scratch(int count, int vocab);
int embedding_backward_prepare(const int32_t* ids, const float* dy, float* table, int count, int vocab, int width,
                               int32_t* scratch);
int cross_entropy_prepare(const float* logits, const int32_t* targets, float* loss, float* d_logits, double* row_loss,
                          int rows, int vocab, int ignore_index, float scale);
int adamw_prepare(float* param, const float* grad, float* m, float* v, int length, float beta1,
                  float one_minus_beta1, float beta2, float one_minus_beta2, float eps, float decay, float step_size,
                  float correction, float grad_scale);
uint32_t sum_squares_scratch(int length);
int sum_squares_prepare(const float* x, float* y, int length, double* scratch);

#ifdef __cplusplus
}
#endif
