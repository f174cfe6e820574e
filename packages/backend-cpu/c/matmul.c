/*
 * matmul: C = A · B per batch entry, A [M, K] (or stored [K, M]), B [K, N] (or stored [N, K]),
 * B optionally shared by every batch entry (a weight).
 *
 * General path (GotoBLAS / BLIS loop structure, Goto & van de Geijn 2008):
 *   phase 1  pack A into MR-row panels and B into NR-column panels, k-major and zero-padded, so the
 *            micro-kernel reads both operands contiguously whatever their layout (one pass each);
 *   phase 2  one task per MC×NC block of C: for each KC slice of K, for each NR panel of B (8 KiB,
 *            stays in L1) sweep the MR panels of A (the MC×KC block, 64 KiB, stays in L2).
 * Small M (decoding a few tokens) skips packing B, which would cost as much as the product: tasks
 * stream B once, in axpy form when B is [K, N] and in dot-product form when it is [N, K].
 *
 * Every element of C is computed by one task in a fixed order, so the result does not depend on the
 * number of threads.
 */
#include "entry-points.generated.h"
#include "job.h"
#include "microkernel.h"

#define KC 256 /* K slice: an A micro-panel (4 KiB) and a B micro-panel (8 KiB) share L1 */
#define MC 64  /* rows of C per task */
#define NC 256 /* columns of C per task */
#define PACK_PANELS 16 /* panels packed per task */

enum { TRANSPOSE_A = 1, TRANSPOSE_B = 2, SHARED_B = 4 };

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float* a;
  const float* b;
  float* c;
  int batches, m, n, k;
  /* Element (i, p) of a batch entry of A is a[i·a_row + p·a_col]; (p, j) of B is b[p·b_row + j·b_col]. */
  int a_row, a_col, b_row, b_col;
  int b_batches; /* 1 when B is shared */
  int a_panels, b_panels;
  float* packed_a;
  float* packed_b;
  int a_pack_tasks, b_pack_tasks;
  int row_blocks, col_blocks, column_chunks;
} MatmulArgs;
JOB_ARGS_FIT(MatmulArgs);

/* Decoding a few tokens: A has at most one panel of rows. */
INLINE int small_m(const MatmulArgs* mm) { return mm->m <= MR; }

/*
 * Sets the shape of the next matmul (flags: 1 A transposed, 2 B transposed, 4 B shared; M, N, K ≥ 1)
 * and returns the scratch bytes it needs for packed A and B (the small-M path packs only A);
 * saturates at 4 GiB − 1.
 */
uint32_t matmul_configure(Job* job, int batches, int m, int n, int k, int flags) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  const int shared = (flags & SHARED_B) != 0;
  /* A shared weight over row-major A: the batch entries are just more rows. */
  if (shared && !(flags & TRANSPOSE_A)) {
    m *= batches;
    batches = 1;
  }
  mm->batches = batches;
  mm->m = m;
  mm->n = n;
  mm->k = k;
  mm->a_row = flags & TRANSPOSE_A ? 1 : k;
  mm->a_col = flags & TRANSPOSE_A ? m : 1;
  mm->b_row = flags & TRANSPOSE_B ? 1 : n;
  mm->b_col = flags & TRANSPOSE_B ? k : 1;
  mm->b_batches = shared ? 1 : batches;
  mm->a_panels = (m + MR - 1) / MR;
  mm->b_panels = (n + NR - 1) / NR;
  uint64_t floats = (uint64_t)mm->batches * mm->a_panels * MR * k;
  if (!small_m(mm)) floats += (uint64_t)mm->b_batches * mm->b_panels * NR * k;
  const uint64_t bytes = floats * 4;
  return bytes > 0xffffffffu ? 0xffffffffu : (uint32_t)bytes;
}

/* ---- packing --------------------------------------------------------------------------------- */

/* Rows [i0, i0 + MR) of A as one k-major panel: dst[p·MR + i] = A(i0 + i, p), zero past M. */
static void pack_a_panel(const MatmulArgs* mm, const float* a, int i0, float* dst) {
  const int rows = min_int(MR, mm->m - i0), k = mm->k;
  int p = 0;
  if (rows == MR && mm->a_col == 1) {
    /* Row-major A: transpose 4×4 blocks. */
    const float* r0 = a + i0 * mm->a_row;
    const float* r1 = r0 + mm->a_row;
    const float* r2 = r1 + mm->a_row;
    const float* r3 = r2 + mm->a_row;
    for (; p + 4 <= k; p += 4) {
      const v128_t x0 = wasm_v128_load(r0 + p), x1 = wasm_v128_load(r1 + p);
      const v128_t x2 = wasm_v128_load(r2 + p), x3 = wasm_v128_load(r3 + p);
      const v128_t t0 = wasm_i32x4_shuffle(x0, x1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(x0, x1, 2, 6, 3, 7);
      const v128_t t2 = wasm_i32x4_shuffle(x2, x3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(x2, x3, 2, 6, 3, 7);
      wasm_v128_store(dst + (p + 0) * MR, wasm_i64x2_shuffle(t0, t2, 0, 2));
      wasm_v128_store(dst + (p + 1) * MR, wasm_i64x2_shuffle(t0, t2, 1, 3));
      wasm_v128_store(dst + (p + 2) * MR, wasm_i64x2_shuffle(t1, t3, 0, 2));
      wasm_v128_store(dst + (p + 3) * MR, wasm_i64x2_shuffle(t1, t3, 1, 3));
    }
  } else if (rows == MR && mm->a_row == 1) {
    /* A stored [K, M]: each step is four contiguous values. */
    for (; p < k; p++) wasm_v128_store(dst + p * MR, wasm_v128_load(a + i0 + p * mm->a_col));
  }
  for (; p < k; p++)
    for (int i = 0; i < MR; i++) dst[p * MR + i] = i < rows ? a[(i0 + i) * mm->a_row + p * mm->a_col] : 0.0f;
}

/* Columns [j0, j0 + NR) of B as one k-major panel: dst[p·NR + j] = B(p, j0 + j), zero past N. */
static void pack_b_panel(const MatmulArgs* mm, const float* b, int j0, float* dst) {
  const int cols = min_int(NR, mm->n - j0), k = mm->k;
  int p = 0;
  if (cols == NR && mm->b_col == 1) {
    /* B stored [K, N]: two vectors per step. */
    for (; p < k; p++) {
      const float* row = b + p * mm->b_row + j0;
      wasm_v128_store(dst + p * NR, wasm_v128_load(row));
      wasm_v128_store(dst + p * NR + 4, wasm_v128_load(row + 4));
    }
  } else if (cols == NR && mm->b_row == 1) {
    /* B stored [N, K] (a Linear weight): transpose two 4×4 blocks per four steps. */
    for (; p + 4 <= k; p += 4) {
      for (int half = 0; half < 2; half++) {
        const float* r0 = b + (j0 + 4 * half) * mm->b_col + p;
        const v128_t x0 = wasm_v128_load(r0), x1 = wasm_v128_load(r0 + mm->b_col);
        const v128_t x2 = wasm_v128_load(r0 + 2 * mm->b_col), x3 = wasm_v128_load(r0 + 3 * mm->b_col);
        const v128_t t0 = wasm_i32x4_shuffle(x0, x1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(x0, x1, 2, 6, 3, 7);
        const v128_t t2 = wasm_i32x4_shuffle(x2, x3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(x2, x3, 2, 6, 3, 7);
        float* d = dst + p * NR + 4 * half;
        wasm_v128_store(d, wasm_i64x2_shuffle(t0, t2, 0, 2));
        wasm_v128_store(d + NR, wasm_i64x2_shuffle(t0, t2, 1, 3));
        wasm_v128_store(d + 2 * NR, wasm_i64x2_shuffle(t1, t3, 0, 2));
        wasm_v128_store(d + 3 * NR, wasm_i64x2_shuffle(t1, t3, 1, 3));
      }
    }
  }
  for (; p < k; p++)
    for (int j = 0; j < NR; j++) dst[p * NR + j] = j < cols ? b[p * mm->b_row + (j0 + j) * mm->b_col] : 0.0f;
}

INLINE const float* a_entry(const MatmulArgs* mm, int batch) { return mm->a + (uint32_t)batch * mm->m * mm->k; }
INLINE const float* b_entry(const MatmulArgs* mm, int batch) { return mm->b + (uint32_t)batch * mm->k * mm->n; }
INLINE float* packed_a_entry(const MatmulArgs* mm, int batch) {
  return mm->packed_a + (uint32_t)batch * mm->a_panels * MR * mm->k;
}
INLINE float* packed_b_entry(const MatmulArgs* mm, int batch) {
  return mm->packed_b + (uint32_t)batch * mm->b_panels * NR * mm->k;
}

/* Tasks [0, a_pack_tasks) pack A, the rest pack B; each packs up to PACK_PANELS panels. */
static void pack_task(const Job* job, int task, int thread) {
  const MatmulArgs* mm = JOB_ARGS(const MatmulArgs, job);
  (void)thread;
  if (task < mm->a_pack_tasks) {
    const int per_batch = mm->a_pack_tasks / mm->batches;
    const int batch = task / per_batch, first = (task % per_batch) * PACK_PANELS;
    const int last = min_int(mm->a_panels, first + PACK_PANELS);
    for (int panel = first; panel < last; panel++)
      pack_a_panel(mm, a_entry(mm, batch), panel * MR, packed_a_entry(mm, batch) + panel * MR * mm->k);
  } else {
    task -= mm->a_pack_tasks;
    const int per_batch = mm->b_pack_tasks / mm->b_batches;
    const int batch = task / per_batch, first = (task % per_batch) * PACK_PANELS;
    const int last = min_int(mm->b_panels, first + PACK_PANELS);
    for (int panel = first; panel < last; panel++)
      pack_b_panel(mm, b_entry(mm, batch), panel * NR, packed_b_entry(mm, batch) + panel * NR * mm->k);
  }
}

/* ---- general path: compute -------------------------------------------------------------------- */

static void compute_task(const Job* job, int task, int thread) {
  const MatmulArgs* mm = JOB_ARGS(const MatmulArgs, job);
  (void)thread;
  const int blocks = mm->row_blocks * mm->col_blocks;
  const int batch = task / blocks, block = task % blocks;
  /*
   * Consecutive tasks (claimed at about the same time by different threads) share a column block
   * of packed B and take different row blocks of A: the K×NC slab of B they all read stays in L3,
   * which at 2048³ is a tenth faster than sharing A.
   */
  const int i0 = (block % mm->row_blocks) * MC, i1 = min_int(mm->m, i0 + MC);
  const int j0 = (block / mm->row_blocks) * NC, j1 = min_int(mm->n, j0 + NC);
  const int k = mm->k, n = mm->n;
  const float* pa = packed_a_entry(mm, batch);
  const float* pb = packed_b_entry(mm, mm->b_batches == 1 ? 0 : batch);
  float* c = mm->c + (uint32_t)batch * mm->m * n;
  for (int pc = 0; pc < k; pc += KC) {
    const int kc = min_int(KC, k - pc);
    for (int j = j0; j < j1; j += NR) {
      const float* bp = pb + (j / NR) * NR * k + pc * NR;
      const int cols = min_int(NR, j1 - j);
      for (int i = i0; i < i1; i += MR) {
        const float* ap = pa + (i / MR) * MR * k + pc * MR;
        const int rows = min_int(MR, i1 - i);
        float* cp = c + i * n + j;
        if (rows == MR && cols == NR) microkernel(kc, ap, MR, bp, NR, cp, n, pc > 0);
        else microkernel_edge(kc, ap, MR, bp, NR, cp, n, rows, cols, pc > 0);
      }
    }
  }
}

static int begin_compute(Job* job) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  mm->row_blocks = (mm->m + MC - 1) / MC;
  mm->col_blocks = (mm->n + NC - 1) / NC;
  return job_begin(job, compute_task, mm->batches * mm->row_blocks * mm->col_blocks, 0);
}

/* ---- small M ------------------------------------------------------------------------------------ */

#define CHUNK 64 /* columns of C per task */

/*
 * B [K, N]: C[i][j..j+8) = Σ_p A(i, p)·B[p][j..j+8) with A packed k-major (MR rows, zero-padded),
 * B read in place row after row. The last columns (N mod 8) take a scalar loop so that no vector
 * load runs past the end of B.
 */
static void small_axpy_task(const Job* job, int task, int thread) {
  const MatmulArgs* mm = JOB_ARGS(const MatmulArgs, job);
  (void)thread;
  const int batch = task / mm->column_chunks;
  const int j0 = (task % mm->column_chunks) * CHUNK, j1 = min_int(mm->n, j0 + CHUNK);
  const float* pa = packed_a_entry(mm, batch);
  const float* b = b_entry(mm, mm->b_batches == 1 ? 0 : batch);
  float* c = mm->c + (uint32_t)batch * mm->m * mm->n;
  int j = j0;
  for (; j + NR <= j1; j += NR) {
    if (mm->m == MR) microkernel(mm->k, pa, MR, b + j, mm->n, c + j, mm->n, 0);
    else microkernel_edge(mm->k, pa, MR, b + j, mm->n, c + j, mm->n, mm->m, NR, 0);
  }
  for (; j < j1; j++)
    for (int i = 0; i < mm->m; i++) {
      float sum = 0.0f;
      for (int p = 0; p < mm->k; p++) sum += pa[p * MR + i] * b[p * mm->n + j];
      c[i * mm->n + j] = sum;
    }
}

/*
 * B [N, K] (a Linear weight): C[i][j] = A_i · B_j, four rows of B per step against each row of A
 * (packed row-major); the four rows of B stay in L1 while every row of A passes over them.
 */
static void small_dot_task(const Job* job, int task, int thread) {
  const MatmulArgs* mm = JOB_ARGS(const MatmulArgs, job);
  (void)thread;
  const int batch = task / mm->column_chunks;
  const int j0 = (task % mm->column_chunks) * CHUNK, j1 = min_int(mm->n, j0 + CHUNK);
  const int k = mm->k;
  const float* pa = packed_a_entry(mm, batch);
  const float* b = b_entry(mm, mm->b_batches == 1 ? 0 : batch);
  float* c = mm->c + (uint32_t)batch * mm->m * mm->n;
  for (int j = j0; j < j1; j += 4) {
    /* Past N, repeat the last row: the extra sums are computed and dropped. */
    const float* y0 = b + j * k;
    const float* y1 = b + min_int(j + 1, mm->n - 1) * k;
    const float* y2 = b + min_int(j + 2, mm->n - 1) * k;
    const float* y3 = b + min_int(j + 3, mm->n - 1) * k;
    for (int i = 0; i < mm->m; i++) {
      float sums[4];
      wasm_v128_store(sums, dot4(pa + i * k, y0, y1, y2, y3, k));
      for (int r = 0; r < 4 && j + r < j1; r++) c[i * mm->n + j + r] = sums[r];
    }
  }
}

/* Packs the ≤ MR rows of each batch entry of A: k-major for the axpy form, row-major for the dot form. */
static void small_pack_task(const Job* job, int batch, int thread) {
  const MatmulArgs* mm = JOB_ARGS(const MatmulArgs, job);
  (void)thread;
  const float* a = a_entry(mm, batch);
  float* dst = packed_a_entry(mm, batch);
  if (mm->b_row == 1) {
    for (int i = 0; i < mm->m; i++)
      for (int p = 0; p < mm->k; p++) dst[i * mm->k + p] = a[i * mm->a_row + p * mm->a_col];
  } else {
    pack_a_panel(mm, a, 0, dst);
  }
}

static int begin_small_compute(Job* job) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  mm->column_chunks = (mm->n + CHUNK - 1) / CHUNK;
  return job_begin(job, mm->b_row == 1 ? small_dot_task : small_axpy_task, mm->batches * mm->column_chunks, 0);
}

/* ---- entry -------------------------------------------------------------------------------------- */

/* Prepares the configured C = A·B with the scratch it asked for; returns the first phase's task count. */
int matmul_prepare(Job* job, const float* a, const float* b, float* c, float* scratch) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  const int k = mm->k;
  mm->a = a;
  mm->b = b;
  mm->c = c;
  mm->packed_a = scratch;
  mm->packed_b = scratch + (uint32_t)mm->batches * mm->a_panels * MR * k;
  if (small_m(mm)) return job_begin(job, small_pack_task, mm->batches, begin_small_compute);
  const int a_tasks_per_batch = (mm->a_panels + PACK_PANELS - 1) / PACK_PANELS;
  const int b_tasks_per_batch = (mm->b_panels + PACK_PANELS - 1) / PACK_PANELS;
  mm->a_pack_tasks = mm->batches * a_tasks_per_batch;
  mm->b_pack_tasks = mm->b_batches * b_tasks_per_batch;
  return job_begin(job, pack_task, mm->a_pack_tasks + mm->b_pack_tasks, begin_compute);
}
