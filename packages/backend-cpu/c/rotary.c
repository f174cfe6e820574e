/*
 * rotary on the thread pool, for the WebAssembly and native engines (the TypeScript engine runs
 * ../src/kernels/rotary.ts, whose contract and arithmetic this follows): x [B, T, H, d] rotated
 * pairwise by position with tables cos, sin [P, r/2], r ≤ d; token t uses row positionOffset + t;
 * dimensions from r on are copied.
 *   interleaved: pairs (x[2j], x[2j+1]);  half: pairs (x[j], x[j + r/2])
 * Each pair (a, b) becomes (a·cos − b·sin, b·cos + a·sin), computed in double and rounded once to
 * float, as the TypeScript kernel does (its numbers are doubles): the engines agree bit for bit.
 * So nothing may fuse a product into a sum here (native builds pass -ffp-contract=off; clang, which
 * builds the WebAssembly, is told below).
 * One task per ROWS tokens of the flattened [B·T] rows.
 */
#include <stddef.h>

#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"

#ifdef __clang__
#pragma clang fp contract(off)
#endif

#define ROWS 16

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float* x;
  const float* cos;
  const float* sin;
  float* y;
  int tokens, heads, width, half, interleaved, offset, rows;
} RotaryArgs;
JOB_ARGS_FIT(RotaryArgs);

static void rotary_task(const Job* job, int task, int thread) {
  (void)thread;
  const RotaryArgs* ro = JOB_ARGS(const RotaryArgs, job);
  const int first_row = task * ROWS, last_row = min_int(ro->rows, first_row + ROWS);
  const int width = ro->width, half = ro->half;
  for (int r = first_row; r < last_row; r++) {
    const int t = r % ro->tokens;
    const float* c = ro->cos + (size_t)(ro->offset + t) * half;
    const float* s = ro->sin + (size_t)(ro->offset + t) * half;
    for (int h = 0; h < ro->heads; h++) {
      const size_t base = ((size_t)r * ro->heads + h) * width;
      const float* in = ro->x + base;
      float* out = ro->y + base;
      if (2 * half < width) __builtin_memcpy(out + 2 * half, in + 2 * half, (size_t)(width - 2 * half) * sizeof(float));
      if (ro->interleaved) {
        for (int j = 0; j < half; j++) {
          const double a0 = in[2 * j], a1 = in[2 * j + 1], cj = c[j], sj = s[j];
          out[2 * j] = (float)(a0 * cj - a1 * sj);
          out[2 * j + 1] = (float)(a1 * cj + a0 * sj);
        }
      } else {
        for (int j = 0; j < half; j++) {
          const double a0 = in[j], a1 = in[j + half], cj = c[j], sj = s[j];
          out[j] = (float)(a0 * cj - a1 * sj);
          out[j + half] = (float)(a1 * cj + a0 * sj);
        }
      }
    }
  }
}

/* Prepares y = rotary(x) (interleaved: 1 for pairs (2j, 2j+1), 0 for (j, j + r/2)); returns the task count. */
int rotary_prepare(Job* job, const float* x, const float* cos, const float* sin, float* y, int batch, int tokens,
                   int heads, int width, int half, int interleaved, int position_offset) {
  RotaryArgs* ro = JOB_ARGS(RotaryArgs, job);
  ro->x = x;
  ro->cos = cos;
  ro->sin = sin;
  ro->y = y;
  ro->tokens = tokens;
  ro->heads = heads;
  ro->width = width;
  ro->half = half;
  ro->interleaved = interleaved;
  ro->offset = position_offset;
  ro->rows = batch * tokens;
  return job_begin(job, rotary_task, (ro->rows + ROWS - 1) / ROWS, 0);
}
