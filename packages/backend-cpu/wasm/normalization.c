/*
 * rmsNorm: y = x / √(mean(x²) + eps) · weight over rows of `width` values (Zhang & Sennrich 2019),
 * rows split into tasks of about CHUNK elements. The sum of squares runs in four float32 lanes.
 */
#include "job.h"
#include "simd.h"

#define CHUNK 16384 /* elements per task, rounded to whole rows */

static struct {
  const float* x;
  const float* weight; /* null: weight 1 */
  float* y;
  int rows, width, rows_per_task;
  float eps;
} rn;

static void rms_norm_task(int task, int thread) {
  (void)thread;
  const int width = rn.width, first = task * rn.rows_per_task, last = min_int(rn.rows, first + rn.rows_per_task);
  for (int r = first; r < last; r++) {
    const float* x = rn.x + (uint32_t)r * width;
    float* y = rn.y + (uint32_t)r * width;
    v128_t squares = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 4 <= width; i += 4) {
      const v128_t v = wasm_v128_load(x + i);
      squares = madd(v, v, squares);
    }
    float sum = horizontal_sum(squares);
    for (; i < width; i++) sum += x[i] * x[i];
    const float inverse = 1.0f / __builtin_sqrtf(sum / width + rn.eps);
    const v128_t scale = wasm_f32x4_splat(inverse);
    i = 0;
    if (rn.weight) {
      for (; i + 4 <= width; i += 4)
        wasm_v128_store(y + i, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(x + i), scale), wasm_v128_load(rn.weight + i)));
      for (; i < width; i++) y[i] = x[i] * inverse * rn.weight[i];
    } else {
      for (; i + 4 <= width; i += 4) wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(x + i), scale));
      for (; i < width; i++) y[i] = x[i] * inverse;
    }
  }
}

/* Prepares y = rmsNorm(x) · weight over `rows` rows of `width` ≥ 1; returns the task count. */
EXPORT(rms_norm_prepare) int rms_norm_prepare(const float* x, const float* weight, float* y, int rows, int width, float eps) {
  rn.x = x, rn.weight = weight, rn.y = y, rn.rows = rows, rn.width = width, rn.eps = eps;
  rn.rows_per_task = max_int(1, CHUNK / width);
  return job_begin(rms_norm_task, (rows + rn.rows_per_task - 1) / rn.rows_per_task, 0);
}
