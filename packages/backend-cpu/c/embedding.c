/*
 * embeddingBackward: the table's gradient [V, E] as a deterministic scatter-add. A one-task phase
 * sorts the positions by id (a counting sort, stable: positions of one id stay in id order); then
 * each task owns a range of vocabulary rows and sums, for each, the rows of dy of its positions in
 * that order. No two tasks write one row and every row's sum has one order, so the result is the
 * same bits whatever the thread count. Ids outside [0, V) are skipped (core never passes them).
 */
#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"

#define CHUNK 16384 /* output elements per task, rounded to whole rows */

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const int32_t* ids;
  const float* dy;
  float* table;
  int count, vocab, width, rows_per_task;
  int32_t *starts, *next, *positions; /* [vocab + 1], [vocab], [count] */
} EmbeddingBackwardArgs;
JOB_ARGS_FIT(EmbeddingBackwardArgs);

static void sort_task(const Job* job, int task, int thread) {
  (void)task, (void)thread;
  const EmbeddingBackwardArgs* eb = JOB_ARGS(const EmbeddingBackwardArgs, job);
  const int vocab = eb->vocab;
  for (int v = 0; v <= vocab; v++) eb->starts[v] = 0;
  for (int i = 0; i < eb->count; i++) {
    const int id = eb->ids[i];
    if (id >= 0 && id < vocab) eb->starts[id + 1]++;
  }
  for (int v = 0; v < vocab; v++) eb->starts[v + 1] += eb->starts[v], eb->next[v] = eb->starts[v];
  for (int i = 0; i < eb->count; i++) {
    const int id = eb->ids[i];
    if (id >= 0 && id < vocab) eb->positions[eb->next[id]++] = i;
  }
}

static void scatter_task(const Job* job, int task, int thread) {
  (void)thread;
  const EmbeddingBackwardArgs* eb = JOB_ARGS(const EmbeddingBackwardArgs, job);
  const int width = eb->width, first = task * eb->rows_per_task, last = min_int(eb->vocab, first + eb->rows_per_task);
  for (int v = first; v < last; v++) {
    float* row = eb->table + (uint32_t)v * width;
    __builtin_memset(row, 0, sizeof(float) * width);
    for (int o = eb->starts[v]; o < eb->starts[v + 1]; o++) {
      const float* source = eb->dy + (uint32_t)eb->positions[o] * width;
      int j = 0;
      for (; j + 4 <= width; j += 4)
        wasm_v128_store(row + j, wasm_f32x4_add(wasm_v128_load(row + j), wasm_v128_load(source + j)));
      for (; j < width; j++) row[j] += source[j];
    }
  }
}

static int begin_scatter(Job* job) {
  const EmbeddingBackwardArgs* eb = JOB_ARGS(const EmbeddingBackwardArgs, job);
  return job_begin(job, scatter_task, (eb->vocab + eb->rows_per_task - 1) / eb->rows_per_task, 0);
}

/* The scratch bytes embedding_backward_prepare needs: the sort's three int32 arrays. */
uint32_t embedding_backward_scratch(int count, int vocab) { return 4u * (uint32_t)(2 * vocab + 1 + count); }

/* Prepares table = scatter-add of `count` rows of dy (width ≥ 1) at ids; returns the first phase's task count. */
int embedding_backward_prepare(Job* job, const int32_t* ids, const float* dy, float* table, int count, int vocab,
                               int width, int32_t* scratch) {
  EmbeddingBackwardArgs* eb = JOB_ARGS(EmbeddingBackwardArgs, job);
  eb->ids = ids, eb->dy = dy, eb->table = table, eb->count = count, eb->vocab = vocab, eb->width = width;
  eb->rows_per_task = max_int(1, CHUNK / width);
  eb->starts = scratch, eb->next = scratch + vocab + 1, eb->positions = scratch + 2 * vocab + 1;
  return job_begin(job, sort_task, 1, begin_scatter);
}
