/*
 * sumSquares: Σ x² over a whole tensor (global-norm gradient clipping), deterministic whatever the
 * thread count: tasks own fixed chunks (the partition depends on the length alone), each sums its
 * chunk in float32 lanes over blocks of BLOCK elements carried into a double, and a last one-task
 * phase adds the chunks' sums in chunk order.
 */
#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"

#define CHUNK 16384 /* elements per task */
#define BLOCK 256   /* elements summed in float32 before they join the double */

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float* x;
  float* y;
  double* partials; /* one per chunk */
  int length, chunks;
} SumSquaresArgs;
JOB_ARGS_FIT(SumSquaresArgs);

static void sum_squares_task(const Job* job, int task, int thread) {
  (void)thread;
  const SumSquaresArgs* ss = JOB_ARGS(const SumSquaresArgs, job);
  const int start = task * CHUNK, end = min_int(ss->length, start + CHUNK);
  double total = 0.0;
  for (int block = start; block < end; block += BLOCK) {
    const int stop = min_int(end, block + BLOCK);
    v128_t lanes = wasm_f32x4_splat(0.0f);
    int i = block;
    for (; i + 4 <= stop; i += 4) {
      const v128_t v = wasm_v128_load(ss->x + i);
      lanes = madd(v, v, lanes);
    }
    float sum = horizontal_sum(lanes);
    for (; i < stop; i++) sum += ss->x[i] * ss->x[i];
    total += sum;
  }
  ss->partials[task] = total;
}

static void sum_chunks_task(const Job* job, int task, int thread) {
  (void)task, (void)thread;
  const SumSquaresArgs* ss = JOB_ARGS(const SumSquaresArgs, job);
  double total = 0.0;
  for (int i = 0; i < ss->chunks; i++) total += ss->partials[i];
  ss->y[0] = (float)total;
}

static int begin_sum_chunks(Job* job) { return job_begin(job, sum_chunks_task, 1, 0); }

/* The scratch bytes sum_squares_prepare needs for `length` elements: one double per chunk. */
uint32_t sum_squares_scratch(int length) {
  return 8u * (uint32_t)((length + CHUNK - 1) / CHUNK + 1);
}

/* Prepares y[0] = Σ x² over `length` ≥ 1 elements; returns the first phase's task count. */
int sum_squares_prepare(Job* job, const float* x, float* y, int length, double* scratch) {
  SumSquaresArgs* ss = JOB_ARGS(SumSquaresArgs, job);
  ss->x = x, ss->y = y, ss->length = length, ss->partials = scratch;
  ss->chunks = (length + CHUNK - 1) / CHUNK;
  return job_begin(job, sum_squares_task, ss->chunks, begin_sum_chunks);
}
