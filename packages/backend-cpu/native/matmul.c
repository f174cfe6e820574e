/*
 * matmul for the native engine: ../c/matmul.c's contract and loop structure (GotoBLAS / BLIS,
 * Goto & van de Geijn 2008: B in NR-column panels, one task per MC×NC block of C over KC slices of
 * K), with a register tile sized for the instruction set it is compiled for instead of SIMD128's 4×8:
 *
 *   AVX-512   12×32: 24 zmm accumulators, two B vectors and a broadcast of 32 registers
 *   AVX2+FMA   6×16: 12 ymm accumulators, two B vectors and a broadcast of 16 registers
 *   baseline   6×8 (SSE2 on x64, NEON on arm64), the same shape at 128 bits
 *
 * (the shapes BLIS gives its Skylake-X and Haswell sgemm kernels, transposed: our vectors run along
 * the rows of C). Rows past a multiple of MR run 4-, 2- and 1-row kernels, so a decoding step
 * (M = 1) does not compute MR rows to keep one.
 *
 * A is never packed: the micro-kernel broadcasts A(i, p) from wherever it is stored, as BLIS's
 * "sup" kernels do for small problems. A broadcast is one load per element, packed or not, and
 * packing A (each call reads and writes all of it, scalar and strided for row-major A) took as long
 * as a tenth of a training step's matmul time. B is read in place too where its rows already hold the panels
 * (row-major B whose width is a multiple of NR, as a weight gradient's activations are); otherwise
 * it is packed into NR-column panels. B can be packed once and kept (matmul_pack_b_prepare, then
 * matmul_prepare_packed): the engine keeps the packed panels of a weight while the weight is
 * unchanged, as onnxruntime pre-packs its initializers. Every element of C is computed by one task,
 * one multiply-add at a time from p = 0, so the result depends neither on the number of threads nor
 * on which operands were packed.
 */
#include <stdint.h>
#include <string.h>

#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define VL 16
#define MR 12
typedef __m512 vf;
#define VLOAD(p) _mm512_load_ps(p)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VSPLAT(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VL 8
#define MR 6
typedef __m256 vf;
#define VLOAD(p) _mm256_load_ps(p)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VSPLAT(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#else
#define VL 4
#define MR 6
typedef float vf __attribute__((vector_size(16)));
typedef float vf_unaligned __attribute__((vector_size(16), aligned(4)));
#define VLOAD(p) (*(const vf*)(p))
#define VLOADU(p) ((vf)(*(const vf_unaligned*)(p)))
#define VSTOREU(p, v) (*(vf_unaligned*)(p) = (v))
#define VSPLAT(x) ((vf){0, 0, 0, 0} + (x))
#define VZERO() ((vf){0, 0, 0, 0})
#if defined(__aarch64__)
#define VFMA(a, b, c) ((vf)vfmaq_f32((float32x4_t)(c), (float32x4_t)(a), (float32x4_t)(b)))
#else
#define VFMA(a, b, c) ((a) * (b) + (c))
#endif
#endif

#define NR (2 * VL)
#define KC 256 /* K slice */
#define MC (8 * MR) /* rows of C per task: the A block (MC×KC) stays in L2 */
#define NC 256 /* columns of C per task */
#define PACK_PANELS 8 /* panels packed per task */
#define MIN_TASKS 16 /* tasks of a compute phase, where the shape allows: enough for a few threads to share evenly */

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
  int row_panels, b_panels;
  int b_in_place; /* B read where it is (row-major, N a multiple of NR) unless a packed copy is given */
  float* packed_b;
  int b_pack_tasks;
  int row_blocks, col_blocks, mc, nc;
} MatmulArgs;
JOB_ARGS_FIT(MatmulArgs);

/* ---- micro-kernels ------------------------------------------------------------------------------ */

/*
 * C[i][0..NR) (+)= Σ_{p<k} A(i, p)·B(p, 0..NR) for i < R, with A(i, p) = a[p·a_step + i·a_row] and
 * B(p, j) = b[p·b_step + j]. Written once per row count so that every loop bound is a constant and the
 * accumulators stay in registers.
 */
#define DEFINE_KERNEL(R)                                                                                      \
  static void kernel_##R(int k, const float* a, int a_step, int a_row, const float* b, int b_step, float* c, \
                         int ldc, int accumulate) {                                                           \
    vf c0[R], c1[R];                                                                                          \
    _Pragma("GCC unroll 16") for (int i = 0; i < R; i++) {                                                    \
      c0[i] = accumulate ? VLOADU(c + i * ldc) : VZERO();                                                     \
      c1[i] = accumulate ? VLOADU(c + i * ldc + VL) : VZERO();                                                \
    }                                                                                                         \
    for (int p = 0; p < k; p++) {                                                                             \
      const vf b0 = VLOADU(b), b1 = VLOADU(b + VL);                                                           \
      _Pragma("GCC unroll 16") for (int i = 0; i < R; i++) {                                                  \
        const vf x = VSPLAT(a[i * a_row]);                                                                    \
        c0[i] = VFMA(x, b0, c0[i]);                                                                           \
        c1[i] = VFMA(x, b1, c1[i]);                                                                           \
      }                                                                                                       \
      a += a_step;                                                                                            \
      b += b_step;                                                                                            \
    }                                                                                                         \
    _Pragma("GCC unroll 16") for (int i = 0; i < R; i++) {                                                    \
      VSTOREU(c + i * ldc, c0[i]);                                                                            \
      VSTOREU(c + i * ldc + VL, c1[i]);                                                                       \
    }                                                                                                         \
  }

DEFINE_KERNEL(MR)
DEFINE_KERNEL(4)
DEFINE_KERNEL(2)
DEFINE_KERNEL(1)

/* `rows` ≤ MR rows of C: the MR-row kernel, or as many 4-, 2- and 1-row kernels as add up to `rows`. */
static void kernel_rows(int rows, int k, const float* a, int a_step, int a_row, const float* b, int b_step, float* c,
                        int ldc, int accumulate) {
  if (rows == MR) {
    kernel_MR(k, a, a_step, a_row, b, b_step, c, ldc, accumulate);
    return;
  }
  int i = 0;
  for (; i + 4 <= rows; i += 4) kernel_4(k, a + i * a_row, a_step, a_row, b, b_step, c + i * ldc, ldc, accumulate);
  if (i + 2 <= rows) kernel_2(k, a + i * a_row, a_step, a_row, b, b_step, c + i * ldc, ldc, accumulate), i += 2;
  if (i < rows) kernel_1(k, a + i * a_row, a_step, a_row, b, b_step, c + i * ldc, ldc, accumulate);
}

/*
 * A tile cut by the right edge of C (packed B, zero-padded past N): computed on a scratch tile, and
 * only the valid columns of C read and written.
 */
static void kernel_edge(int rows, int cols, int k, const float* a, int a_step, int a_row, const float* b, int b_step,
                        float* c, int ldc, int accumulate) {
  if (cols == NR) {
    kernel_rows(rows, k, a, a_step, a_row, b, b_step, c, ldc, accumulate);
    return;
  }
  float tile[MR * NR] __attribute__((aligned(64)));
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < NR; j++) tile[i * NR + j] = accumulate && j < cols ? c[i * ldc + j] : 0.0f;
  kernel_rows(rows, k, a, a_step, a_row, b, b_step, tile, NR, accumulate);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) c[i * ldc + j] = tile[i * NR + j];
}

/* ---- configuration ------------------------------------------------------------------------------ */

/*
 * Sets the shape of the next matmul (flags: 1 A transposed, 2 B transposed, 4 B shared; M, N, K ≥ 1)
 * and returns the scratch bytes matmul_prepare needs (packed B, when B is not read in place; at
 * least 64); saturates at 4 GiB − 1.
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
  mm->row_panels = (m + MR - 1) / MR;
  mm->b_panels = (n + NR - 1) / NR;
  mm->b_in_place = mm->b_col == 1 && n % NR == 0;
  const uint64_t bytes = mm->b_in_place ? 64 : (uint64_t)mm->b_batches * mm->b_panels * NR * k * 4 + 64;
  return bytes > 0xffffffffu ? 0xffffffffu : (uint32_t)bytes;
}

/* Bytes of the configured matmul's packed B (what matmul_pack_b_prepare writes); saturates as above. */
uint32_t matmul_packed_b_bytes(Job* job) {
  const MatmulArgs* mm = JOB_ARGS(const MatmulArgs, job);
  const uint64_t bytes = (uint64_t)mm->b_batches * mm->b_panels * NR * mm->k * 4;
  return bytes > 0xffffffffu ? 0xffffffffu : (uint32_t)bytes;
}

/* ---- packing B ---------------------------------------------------------------------------------- */

/* Columns [j0, j0 + NR) of B as one k-major panel: dst[p·NR + j] = B(p, j0 + j), zero past N. */
static void pack_b_panel(const MatmulArgs* mm, const float* b, int j0, float* dst) {
  const int cols = min_int(NR, mm->n - j0), k = mm->k;
  if (mm->b_col == 1) {
    /* B stored [K, N]: rows of NR contiguous values. */
    for (int p = 0; p < k; p++) {
      const float* row = b + (size_t)p * mm->b_row + j0;
      if (cols == NR) memcpy(dst + p * NR, row, NR * sizeof(float));
      else
        for (int j = 0; j < NR; j++) dst[p * NR + j] = j < cols ? row[j] : 0.0f;
    }
    return;
  }
  /* B stored [N, K] (a Linear weight): each column of the panel is a contiguous row of B. */
  for (int j = 0; j < NR; j++) {
    if (j < cols) {
      const float* src = b + (size_t)(j0 + j) * mm->b_col;
      for (int p = 0; p < k; p++) dst[p * NR + j] = src[p];
    } else {
      for (int p = 0; p < k; p++) dst[p * NR + j] = 0.0f;
    }
  }
}

static const float* a_entry(const MatmulArgs* mm, int batch) { return mm->a + (size_t)batch * mm->m * mm->k; }
static const float* b_entry(const MatmulArgs* mm, int batch) { return mm->b + (size_t)batch * mm->k * mm->n; }
static float* packed_b_entry(const MatmulArgs* mm, int batch) {
  return mm->packed_b + (size_t)batch * mm->b_panels * NR * mm->k;
}

/* Each task packs up to PACK_PANELS panels of B. */
static void pack_task(const Job* job, int task, int thread) {
  const MatmulArgs* mm = JOB_ARGS(const MatmulArgs, job);
  (void)thread;
  const int per_batch = mm->b_pack_tasks / mm->b_batches;
  const int batch = task / per_batch, first = (task % per_batch) * PACK_PANELS;
  const int last = min_int(mm->b_panels, first + PACK_PANELS);
  for (int panel = first; panel < last; panel++)
    pack_b_panel(mm, b_entry(mm, batch), panel * NR, packed_b_entry(mm, batch) + (size_t)panel * NR * mm->k);
}

/* ---- compute ------------------------------------------------------------------------------------ */

static void compute_task(const Job* job, int task, int thread) {
  const MatmulArgs* mm = JOB_ARGS(const MatmulArgs, job);
  (void)thread;
  const int blocks = mm->row_blocks * mm->col_blocks;
  const int batch = task / blocks, block = task % blocks;
  /* Consecutive tasks share a column block of B (it stays in L3) and take different rows. */
  const int i0 = (block % mm->row_blocks) * mm->mc, i1 = min_int(mm->m, i0 + mm->mc);
  const int j0 = (block / mm->row_blocks) * mm->nc, j1 = min_int(mm->n, j0 + mm->nc);
  const int k = mm->k, n = mm->n, a_row = mm->a_row, a_col = mm->a_col;
  const int b_batch = mm->b_batches == 1 ? 0 : batch;
  const float* a = a_entry(mm, batch);
  const float* b = mm->b_in_place ? b_entry(mm, b_batch) : packed_b_entry(mm, b_batch);
  /* Panel j of B starts at b + j·NR in place (rows n apart), or at b + j·NR·k packed (rows NR apart). */
  const int b_step = mm->b_in_place ? n : NR;
  const size_t panel_stride = mm->b_in_place ? NR : (size_t)NR * k;
  float* c = mm->c + (size_t)batch * mm->m * n;
  for (int pc = 0; pc < k; pc += KC) {
    const int kc = min_int(KC, k - pc);
    for (int j = j0; j < j1; j += NR) {
      const float* bp = b + (size_t)(j / NR) * panel_stride + (size_t)pc * b_step;
      const int cols = min_int(NR, j1 - j);
      for (int i = i0; i < i1; i += MR) {
        const float* ap = a + (size_t)i * a_row + (size_t)pc * a_col;
        const int rows = min_int(MR, i1 - i);
        float* cp = c + (size_t)i * n + j;
        if (rows == MR && cols == NR) kernel_MR(kc, ap, a_col, a_row, bp, b_step, cp, n, pc > 0);
        else kernel_edge(rows, cols, kc, ap, a_col, a_row, bp, b_step, cp, n, pc > 0);
      }
    }
  }
}

/* `panels` split into blocks of at most `most` panels each, as even as they can be: the panels per block. */
static int even_block(int panels, int most) {
  const int blocks = (panels + most - 1) / most;
  return (panels + blocks - 1) / blocks;
}

static int begin_compute(Job* job) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  /*
   * Blocks of at most MC rows and NC columns, cut evenly, and cut smaller while there are fewer than
   * MIN_TASKS tasks: a weight gradient (M, N = the layer's widths, K = the tokens) gives only a few
   * MC×NC blocks, and two unequal blocks leave a thread idle for most of the call. The blocking does
   * not change any element's summation order, so the result stays independent of it.
   */
  int row_panels = even_block(mm->row_panels, MC / MR);
  int col_panels = even_block(mm->b_panels, NC / NR);
  for (;;) {
    const int tasks = mm->batches * ((mm->row_panels + row_panels - 1) / row_panels) *
                      ((mm->b_panels + col_panels - 1) / col_panels);
    if (tasks >= MIN_TASKS) break;
    /* Halve the longer side of the block (in elements), as long as one panel is left. */
    if (row_panels * MR >= col_panels * NR && row_panels > 1) row_panels = even_block(mm->row_panels, (row_panels + 1) / 2);
    else if (col_panels > 1) col_panels = even_block(mm->b_panels, (col_panels + 1) / 2);
    else if (row_panels > 1) row_panels = even_block(mm->row_panels, (row_panels + 1) / 2);
    else break;
  }
  mm->mc = row_panels * MR;
  mm->nc = col_panels * NR;
  mm->row_blocks = (mm->row_panels + row_panels - 1) / row_panels;
  mm->col_blocks = (mm->b_panels + col_panels - 1) / col_panels;
  return job_begin(job, compute_task, mm->batches * mm->row_blocks * mm->col_blocks, 0);
}

/* ---- entry -------------------------------------------------------------------------------------- */

/* Packs B into mm->packed_b (when it is not read in place), then computes. */
static int begin_pack_b(Job* job) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  if (mm->b_in_place) return begin_compute(job);
  mm->b_pack_tasks = mm->b_batches * ((mm->b_panels + PACK_PANELS - 1) / PACK_PANELS);
  return job_begin(job, pack_task, mm->b_pack_tasks, begin_compute);
}

/* Prepares the configured C = A·B with the scratch it asked for; returns the first phase's task count. */
int matmul_prepare(Job* job, const float* a, const float* b, float* c, float* scratch) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  mm->a = a;
  mm->b = b;
  mm->c = c;
  mm->packed_b = (float*)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  return begin_pack_b(job);
}

/*
 * Prepares the packing of the configured matmul's B into `packed` (matmul_packed_b_bytes, 64-byte
 * aligned): a job of its own, whose result matmul_prepare_packed then reads as long as B is unchanged.
 */
int matmul_pack_b_prepare(Job* job, const float* b, float* packed) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  mm->b = b;
  mm->packed_b = packed;
  mm->b_pack_tasks = mm->b_batches * ((mm->b_panels + PACK_PANELS - 1) / PACK_PANELS);
  return job_begin(job, pack_task, mm->b_pack_tasks, 0);
}

/* Prepares C = A·B with B already packed (matmul_pack_b_prepare); needs no scratch. */
int matmul_prepare_packed(Job* job, const float* a, const float* packed_b, float* c) {
  MatmulArgs* mm = JOB_ARGS(MatmulArgs, job);
  mm->a = a;
  mm->b = 0;
  mm->c = c;
  mm->packed_b = (float*)packed_b;
  mm->b_in_place = 0;
  return begin_compute(job);
}
