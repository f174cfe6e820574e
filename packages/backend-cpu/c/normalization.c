/*
 * rmsNorm: y = x / √(mean(x²) + eps) · weight over rows of `width` values (Zhang & Sennrich 2019),
 * rows split into tasks of about CHUNK elements. The sum of squares runs in four float32 lanes.
 *
 * Its backward, with ρ = 1/√(mean(x²) + eps), n = x·ρ and g = dy ⊙ weight:
 *   dx = ρ·(g − n·mean(g ⊙ n)),   dWeight = Σ_rows dy ⊙ n
 * The same row partition (fixed by the shape alone): each task sums its rows' dy ⊙ n in order into
 * its own share, and a last one-task phase adds the shares in task order, so dWeight is the same
 * bits whatever the thread count.
 */
#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"

#define CHUNK 16384 /* elements per task, rounded to whole rows */

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float* x;
  const float* weight; /* null: weight 1 */
  float* y;
  int rows, width, rows_per_task;
  float eps;
} RmsNormArgs;
JOB_ARGS_FIT(RmsNormArgs);

static void rms_norm_task(const Job* job, int task, int thread) {
  (void)thread;
  const RmsNormArgs* rn = JOB_ARGS(const RmsNormArgs, job);
  const int width = rn->width, first = task * rn->rows_per_task, last = min_int(rn->rows, first + rn->rows_per_task);
  for (int r = first; r < last; r++) {
    const float* x = rn->x + (uint32_t)r * width;
    float* y = rn->y + (uint32_t)r * width;
    v128_t squares = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 4 <= width; i += 4) {
      const v128_t v = wasm_v128_load(x + i);
      squares = madd(v, v, squares);
    }
    float sum = horizontal_sum(squares);
    for (; i < width; i++) sum += x[i] * x[i];
    const float inverse = 1.0f / __builtin_sqrtf(sum / width + rn->eps);
    const v128_t scale = wasm_f32x4_splat(inverse);
    i = 0;
    if (rn->weight) {
      for (; i + 4 <= width; i += 4)
        wasm_v128_store(y + i, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(x + i), scale), wasm_v128_load(rn->weight + i)));
      for (; i < width; i++) y[i] = x[i] * inverse * rn->weight[i];
    } else {
      for (; i + 4 <= width; i += 4) wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(x + i), scale));
      for (; i < width; i++) y[i] = x[i] * inverse;
    }
  }
}

/* Prepares y = rmsNorm(x) · weight over `rows` rows of `width` ≥ 1; returns the task count. */
int rms_norm_prepare(Job* job, const float* x, const float* weight, float* y, int rows, int width, float eps) {
  RmsNormArgs* rn = JOB_ARGS(RmsNormArgs, job);
  rn->x = x, rn->weight = weight, rn->y = y, rn->rows = rows, rn->width = width, rn->eps = eps;
  rn->rows_per_task = max_int(1, CHUNK / width);
  return job_begin(job, rms_norm_task, (rows + rn->rows_per_task - 1) / rn->rows_per_task, 0);
}

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float *x, *weight, *dy; /* weight null: weight 1 */
  float *dx, *d_weight;         /* d_weight null: none */
  float* shares;                /* [tasks][width] */
  int rows, width, rows_per_task, tasks;
  float eps;
} RmsNormBackwardArgs;
JOB_ARGS_FIT(RmsNormBackwardArgs);

/* a[i]·b[i]·c[i] for i, i + 1 in doubles (b, c null: 1). */
INLINE v128_t product2(const float* a, const float* b, const float* c, int i) {
  v128_t x = wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(a + i));
  if (b) x = wasm_f64x2_mul(x, wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(b + i)));
  if (c) x = wasm_f64x2_mul(x, wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(c + i)));
  return x;
}

/*
 * Σ a[i]·b[i]·c[i] (b, c null: 1) in doubles, the row sums of the backward: four two-lane partial
 * sums (i mod 8), added in a fixed order at the end, so that four additions are in flight where one
 * chain would wait on each.
 */
INLINE double product_sum(const float* a, const float* b, const float* c, int width) {
  v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 8 <= width; i += 8) {
    s0 = wasm_f64x2_add(s0, product2(a, b, c, i));
    s1 = wasm_f64x2_add(s1, product2(a, b, c, i + 2));
    s2 = wasm_f64x2_add(s2, product2(a, b, c, i + 4));
    s3 = wasm_f64x2_add(s3, product2(a, b, c, i + 6));
  }
  for (; i + 2 <= width; i += 2) s0 = wasm_f64x2_add(s0, product2(a, b, c, i));
  const v128_t lanes = wasm_f64x2_add(wasm_f64x2_add(s0, s1), wasm_f64x2_add(s2, s3));
  double sum = wasm_f64x2_extract_lane(lanes, 0) + wasm_f64x2_extract_lane(lanes, 1);
  for (; i < width; i++) sum += (double)a[i] * (b ? b[i] : 1.0f) * (c ? c[i] : 1.0f);
  return sum;
}

static void rms_norm_backward_task(const Job* job, int task, int thread) {
  (void)thread;
  const RmsNormBackwardArgs* rb = JOB_ARGS(const RmsNormBackwardArgs, job);
  const int width = rb->width, first = task * rb->rows_per_task, last = min_int(rb->rows, first + rb->rows_per_task);
  float* share = rb->d_weight ? rb->shares + (uint32_t)task * width : 0;
  if (share) __builtin_memset(share, 0, sizeof(float) * width);
  for (int r = first; r < last; r++) {
    const float* x = rb->x + (uint32_t)r * width;
    const float* dy = rb->dy + (uint32_t)r * width;
    float* dx = rb->dx + (uint32_t)r * width;
    const double rho = 1.0 / __builtin_sqrt(product_sum(x, x, 0, width) / width + rb->eps);
    /* mean(g ⊙ n) = ρ·Σ(dy ⊙ w ⊙ x)/width */
    const double projection = product_sum(dy, x, rb->weight, width);
    /* dx = ρ·g − x·ρ³·Σ(g ⊙ x)/width in doubles: for narrow rows the two terms nearly cancel. */
    const double nm = rho * rho * rho * projection / width;
    const v128_t rv = wasm_f64x2_splat(rho), nmv = wasm_f64x2_splat(nm), rf = wasm_f32x4_splat((float)rho);
    int i = 0;
    for (; i + 4 <= width; i += 4) {
      const v128_t xv = wasm_v128_load(x + i), d = wasm_v128_load(dy + i);
      const v128_t w = rb->weight ? wasm_v128_load(rb->weight + i) : wasm_f32x4_splat(1.0f);
      v128_t half[2];
      for (int k = 0; k < 2; k++) {
        const v128_t xs = k ? wasm_i32x4_shuffle(xv, xv, 2, 3, 0, 1) : xv;
        const v128_t ds = k ? wasm_i32x4_shuffle(d, d, 2, 3, 0, 1) : d;
        const v128_t ws = k ? wasm_i32x4_shuffle(w, w, 2, 3, 0, 1) : w;
        const v128_t g = wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(ds), wasm_f64x2_promote_low_f32x4(ws));
        half[k] = wasm_f32x4_demote_f64x2_zero(
            wasm_f64x2_sub(wasm_f64x2_mul(rv, g), wasm_f64x2_mul(nmv, wasm_f64x2_promote_low_f32x4(xs))));
      }
      wasm_v128_store(dx + i, wasm_i32x4_shuffle(half[0], half[1], 0, 1, 4, 5));
      if (share) wasm_v128_store(share + i, madd(d, wasm_f32x4_mul(xv, rf), wasm_v128_load(share + i)));
    }
    for (; i < width; i++) {
      const double g = (double)dy[i] * (rb->weight ? rb->weight[i] : 1.0f);
      dx[i] = (float)(rho * g - nm * x[i]);
      if (share) share[i] += dy[i] * (x[i] * (float)rho);
    }
  }
}

static void sum_shares_task(const Job* job, int task, int thread) {
  (void)task, (void)thread;
  const RmsNormBackwardArgs* rb = JOB_ARGS(const RmsNormBackwardArgs, job);
  for (int i = 0; i < rb->width; i++) {
    double sum = 0.0;
    for (int t = 0; t < rb->tasks; t++) sum += rb->shares[(uint32_t)t * rb->width + i];
    rb->d_weight[i] = (float)sum;
  }
}

static int begin_sum_shares(Job* job) { return job_begin(job, sum_shares_task, 1, 0); }

/* The scratch bytes rms_norm_backward_prepare needs: one share of dWeight per task. */
uint32_t rms_norm_backward_scratch(int rows, int width) {
  const int rows_per_task = max_int(1, CHUNK / width);
  return 4u * (uint32_t)((rows + rows_per_task - 1) / rows_per_task) * (uint32_t)width;
}

/*
 * Prepares rmsNorm's backward over `rows` rows of `width` ≥ 1 (weight 0: weight 1; d_weight 0: no
 * dWeight); returns the first phase's task count.
 */
int rms_norm_backward_prepare(Job* job, const float* x, const float* weight, const float* dy, float* dx,
                              float* d_weight, float* scratch, int rows, int width, float eps) {
  RmsNormBackwardArgs* rb = JOB_ARGS(RmsNormBackwardArgs, job);
  rb->x = x, rb->weight = weight, rb->dy = dy, rb->dx = dx, rb->d_weight = d_weight, rb->shares = scratch;
  rb->rows = rows, rb->width = width, rb->eps = eps;
  rb->rows_per_task = max_int(1, CHUNK / width);
  rb->tasks = (rows + rb->rows_per_task - 1) / rb->rows_per_task;
  return job_begin(job, rms_norm_backward_task, rb->tasks, d_weight ? begin_sum_shares : 0);
}
