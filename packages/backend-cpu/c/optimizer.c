/*
 * adamw: one AdamW step in place (Loshchilov & Hutter 2019, as torch.optim.AdamW), four lanes at a
 * time over chunks any thread may take:
 *   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²,  param ← param·(1 − lr·wd) − stepSize·m / (√v·c + eps)
 * with g = gradScale·grad; stepSize = lr/(1 − β1ᵗ) and c = 1/√(1 − β2ᵗ) come from the host, in float64.
 */
#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"

#define CHUNK 16384 /* elements per task */

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  float *param, *m, *v;
  const float* grad;
  int length;
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size, correction, grad_scale;
} AdamwArgs;
JOB_ARGS_FIT(AdamwArgs);

typedef struct {
  v128_t beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size, correction, grad_scale;
} Constants;

INLINE void step4(const Constants* k, float* param, const float* grad, float* m, float* v) {
  const v128_t g = wasm_f32x4_mul(k->grad_scale, wasm_v128_load(grad));
  const v128_t first = madd(k->one_minus_beta1, g, wasm_f32x4_mul(k->beta1, wasm_v128_load(m)));
  const v128_t second = madd(k->one_minus_beta2, wasm_f32x4_mul(g, g), wasm_f32x4_mul(k->beta2, wasm_v128_load(v)));
  const v128_t denominator = madd(wasm_f32x4_sqrt(second), k->correction, k->eps);
  const v128_t update = wasm_f32x4_div(wasm_f32x4_mul(k->step_size, first), denominator);
  wasm_v128_store(m, first);
  wasm_v128_store(v, second);
  wasm_v128_store(param, wasm_f32x4_sub(wasm_f32x4_mul(wasm_v128_load(param), k->decay), update));
}

static void adamw_task(const Job* job, int task, int thread) {
  (void)thread;
  const AdamwArgs* aw = JOB_ARGS(const AdamwArgs, job);
  const Constants k = {
      wasm_f32x4_splat(aw->beta1), wasm_f32x4_splat(aw->one_minus_beta1), wasm_f32x4_splat(aw->beta2),
      wasm_f32x4_splat(aw->one_minus_beta2), wasm_f32x4_splat(aw->eps), wasm_f32x4_splat(aw->decay),
      wasm_f32x4_splat(aw->step_size), wasm_f32x4_splat(aw->correction), wasm_f32x4_splat(aw->grad_scale),
  };
  const int start = task * CHUNK, end = min_int(aw->length, start + CHUNK);
  int i = start;
  for (; i + 4 <= end; i += 4) step4(&k, aw->param + i, aw->grad + i, aw->m + i, aw->v + i);
  /* The tail through the same vector code, one lane used, so every element gets the same math. */
  for (; i < end; i++) {
    float p[4] = {aw->param[i]}, g[4] = {aw->grad[i]}, m[4] = {aw->m[i]}, v[4] = {aw->v[i]};
    step4(&k, p, g, m, v);
    aw->param[i] = p[0], aw->m[i] = m[0], aw->v[i] = v[0];
  }
}

/* Prepares the step over `length` elements (constants as the file comment says); returns the task count. */
int adamw_prepare(Job* job, float* param, const float* grad, float* m, float* v, int length, float beta1,
                  float one_minus_beta1, float beta2, float one_minus_beta2, float eps, float decay, float step_size,
                  float correction, float grad_scale) {
  AdamwArgs* aw = JOB_ARGS(AdamwArgs, job);
  aw->param = param, aw->grad = grad, aw->m = m, aw->v = v, aw->length = length;
  aw->beta1 = beta1, aw->one_minus_beta1 = one_minus_beta1, aw->beta2 = beta2, aw->one_minus_beta2 = one_minus_beta2;
  aw->eps = eps, aw->decay = decay, aw->step_size = step_size, aw->correction = correction, aw->grad_scale = grad_scale;
  return job_begin(job, adamw_task, (length + CHUNK - 1) / CHUNK, 0);
}
