/*
 * crossEntropy: the language-modelling loss fused with its gradient, one task per row of logits:
 *   loss_n = ln Σ_j e^(x_j) − x_target,   dLogits_n = scale · (softmax(x) − onehot(target))
 * A row's probabilities are e^((x − max) − ln l) with l = Σ e^(x − max): formed from x − max, never
 * from x − lse, so that a float32 log-sum-exp of logits near 1e4 (half a step is 5e-4) does not
 * shift every probability. Rows whose target is ignoreIndex or outside [0, V) get a zero row and no
 * loss. The rows' losses (in doubles) are added in row order by a last one-task phase.
 */
#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"

#define BLOCK 256 /* values summed in float32 before they join the double */

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float* logits;
  const int32_t* targets;
  float *loss, *d_logits;
  double* row_loss;
  int rows, vocab, ignore_index;
  float scale;
} CrossEntropyArgs;
JOB_ARGS_FIT(CrossEntropyArgs);

/* e^((x − max) − ln l) for one logit, through the vector code, as every other logit of the row. */
INLINE float probability(float x, float max, float log_sum) {
  return wasm_f32x4_extract_lane(exp_nonpositive(wasm_f32x4_splat(x - max - log_sum)), 0);
}

static void cross_entropy_task(const Job* job, int task, int thread) {
  (void)thread;
  const CrossEntropyArgs* ce = JOB_ARGS(const CrossEntropyArgs, job);
  const int vocab = ce->vocab, target = ce->targets[task];
  const float* x = ce->logits + (uint32_t)task * vocab;
  float* dx = ce->d_logits + (uint32_t)task * vocab;
  if (target == ce->ignore_index || target < 0 || target >= vocab) {
    __builtin_memset(dx, 0, sizeof(float) * vocab);
    ce->row_loss[task] = 0.0;
    return;
  }
  int j = 0;
  v128_t lanes = wasm_f32x4_splat(-__builtin_inff());
  for (; j + 4 <= vocab; j += 4) lanes = wasm_f32x4_pmax(lanes, wasm_v128_load(x + j));
  float max = horizontal_max(lanes);
  for (; j < vocab; j++)
    if (x[j] > max) max = x[j];
  const v128_t shift = wasm_f32x4_splat(max);
  double sum = 0.0;
  for (int block = 0; block < vocab; block += BLOCK) {
    const int stop = min_int(vocab, block + BLOCK);
    v128_t total = wasm_f32x4_splat(0.0f);
    for (j = block; j + 4 <= stop; j += 4)
      total = wasm_f32x4_add(total, exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(x + j), shift)));
    float rest = horizontal_sum(total);
    for (; j < stop; j++) rest += wasm_f32x4_extract_lane(exp_nonpositive(wasm_f32x4_splat(x[j] - max)), 0);
    sum += rest;
  }
  const double log_sum = log_f64(sum);
  ce->row_loss[task] = (double)max - x[target] + log_sum;
  const v128_t offset = wasm_f32x4_splat((float)log_sum), scale = wasm_f32x4_splat(ce->scale);
  for (j = 0; j + 4 <= vocab; j += 4) {
    const v128_t shifted = wasm_f32x4_sub(wasm_f32x4_sub(wasm_v128_load(x + j), shift), offset);
    wasm_v128_store(dx + j, wasm_f32x4_mul(scale, exp_nonpositive(shifted)));
  }
  for (; j < vocab; j++) dx[j] = ce->scale * probability(x[j], max, (float)log_sum);
  dx[target] = ce->scale * (probability(x[target], max, (float)log_sum) - 1.0f);
}

static void sum_rows_task(const Job* job, int task, int thread) {
  (void)task, (void)thread;
  const CrossEntropyArgs* ce = JOB_ARGS(const CrossEntropyArgs, job);
  double total = 0.0;
  for (int n = 0; n < ce->rows; n++) total += ce->row_loss[n];
  ce->loss[0] = (float)(ce->scale * total);
}

static int begin_sum_rows(Job* job) { return job_begin(job, sum_rows_task, 1, 0); }

/*
 * Prepares the loss of `rows` ≥ 1 rows of `vocab` ≥ 1 logits; row_loss is scratch of one double per
 * row. Returns the first phase's task count.
 */
int cross_entropy_prepare(Job* job, const float* logits, const int32_t* targets, float* loss, float* d_logits,
                          double* row_loss, int rows, int vocab, int ignore_index, float scale) {
  CrossEntropyArgs* ce = JOB_ARGS(CrossEntropyArgs, job);
  ce->logits = logits, ce->targets = targets, ce->loss = loss, ce->d_logits = d_logits, ce->row_loss = row_loss;
  ce->rows = rows, ce->vocab = vocab, ce->ignore_index = ignore_index, ce->scale = scale;
  return job_begin(job, cross_entropy_task, rows, begin_sum_rows);
}
