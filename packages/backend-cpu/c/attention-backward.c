/*
 * The backward of both streaming attention kernels, as FlashAttention-2's (Dao 2023): probabilities
 * are recomputed tile by tile from q, k and the log-sum-exp the forward saved (./attention.c with
 * statistics), so no T×S matrix ever exists and the scratch is linear in the context. Per map m,
 * with the row terms dO_m and D_m = dO_m · O_m:
 *
 *   P = e^(scale·q·kᵀ − lse),  dP = dO·Vᵀ,  dS = P ⊙ (dP − D),  dV = Pᵀ·dO,  dK = scale·dSᵀ·Q,  dQ = scale·dS·K
 *
 * Differential attention (two maps, DIFF Transformer) has dO₁ = dU and dO₂ = −λ·dU, where dU is the
 * gradient of u = A − λ·B through the fused per-head RMSNorm, so both maps share dP = dU·Vᵀ
 * (dP₂ = −λ·dP) and one product dV = (P₁ − λ·P₂)ᵀ·dU.
 *
 *   phase 1  packing and the row pass, as independent tasks: Kᵀ and K per key block, Vᵀ per key
 *            block, and per (batch, head, query tile) scale·Q in both layouts, dU (dOut for standard
 *            attention) in both layouts, lse, D and λ per row, dλ per row and the tile's share of
 *            the norm weight's gradient;
 *   phase 2  dK and dV: one task per (key block, batch, kv group) walks every head of the group and
 *            every query tile that sees the block, accumulating in its own scratch (causal: the
 *            tiles before the block are skipped);
 *   phase 3  dQ: one task per (query tile, batch, head) walks the key blocks the tile sees;
 *   phase 4  differential attention only: dλ of a per-head λ and the norm weight's gradient, summed
 *            in a fixed order from the rows' and tiles' shares.
 * Every output element is written by one task, and every sum runs in an order fixed by the shapes
 * alone, so the gradients are the same bits whatever the number of threads.
 *
 * The scores are computed with the forward's micro-kernel, from the same scaled queries, in the same
 * order over the head dimension: they are the forward's scores bit for bit, whose maximum the saved
 * log-sum-exp holds, so e^(s − lse) never exceeds 1 and a row that one key dominates gets exactly 1.
 *
 * Layouts for the micro-kernel (./microkernel.h: A k-major, B row-major):
 *   phase 2  S = (scale·Q)·Kᵀ [TQ][BK] from (scale·Q)ᵀ and Kᵀ;  dP = dU·Vᵀ [TQ][BK] from dUᵀ and Vᵀ;
 *            dV += Pᵀ·dU from P and dU rows;  dK += dSᵀ·(scale·Q) from dS and scale·Q rows
 *   phase 3  Sᵀ and dPᵀ [BK][TQ] (queries in the vector lanes, as the forward);  dQ += dS·K from
 *            dSᵀ and K rows
 */
#include "entry-points.generated.h"
#include "job.h"
#include "microkernel.h"

#define TQ 64 /* query rows per tile (a multiple of NR) */
#define BK 64 /* keys per block (a multiple of NR) */

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float *q, *k, *v, *lambda, *norm_weight, *log_sum_exp, *map_outputs, *output, *d_out;
  float *grad_q, *grad_k, *grad_v, *d_lambda, *d_norm_weight;
  int batch, tokens, heads, kv_heads, k_heads, q_heads, dk, dv, capacity, maps;
  int shared_keys, lambda_per_token, causal, key_offset, key_length;
  float scale;
  int norm;
  float eps, output_scale;
  int tile_rows, query_tiles, key_blocks, tokens_p, keys_p, dkp, dvp;
  int key_maps; /* dK accumulators per phase-2 task: 2 for per-map keys (DIFF V1), else 1 */
  int key_tasks, value_tasks, row_tasks;
  float* keys_t;         /* [B][k_heads][key_blocks][dk][BK]     Kᵀ per block, zero-padded */
  float* keys_r;         /* [B][k_heads][keys_p][dkp]             K rows, zero-padded */
  float* values_t;       /* [B][kv_heads][key_blocks][dv][BK]    Vᵀ per block */
  float* queries_t;      /* [B][q_heads][query_tiles][dk][TQ]    (scale·Q)ᵀ per tile */
  float* queries_r;      /* [B][q_heads][tokens_p][dkp]           scale·Q rows */
  float* grads_t;        /* [B][heads][query_tiles][dv][TQ]      dUᵀ per tile */
  float* grads_r;        /* [B][heads][tokens_p][dvp]             dU rows */
  float* row_lse;        /* [B][heads][maps][tokens_p] */
  float* row_d;          /* [B][heads][maps][tokens_p]            dU·A (dO·O), dU·B */
  float* row_lambda;     /* [B][heads][tokens_p]                  λ (differential) */
  float* row_dlambda;    /* [B][heads][tokens_p]                  −B·dU (per-head λ) */
  double* weight_shares; /* [B·heads·query_tiles][dv]            each row-pass task's Σ dOut ⊙ n */
  float* scratch;
  uint32_t thread_floats;
} AttentionBackwardArgs;
JOB_ARGS_FIT(AttentionBackwardArgs);

INLINE int visible(const AttentionBackwardArgs* ab, int t) {
  return ab->causal ? min_int(ab->key_length, ab->key_offset + t + 1) : ab->key_length;
}
/* Key head of map m of group g: per-map keys 2g + m (V1), or g (shared keys, standard attention). */
INLINE int key_head(const AttentionBackwardArgs* ab, int g, int m) { return ab->key_maps == 2 ? 2 * g + m : g; }
INLINE int query_head(const AttentionBackwardArgs* ab, int h, int m) { return ab->maps == 2 ? 2 * h + m : h; }

/* ---- phase 1: packing and the row pass ------------------------------------------------------------- */

/* Rows [0, count) of a block, `width` values each from rows `stride` apart, into `rows` rows of `padded`, zero past. */
static void copy_rows(const float* src, int stride, int count, int width, float* dst, int rows, int padded) {
  for (int j = 0; j < rows; j++) {
    prefetch_row(src + (uint32_t)(j + PREFETCH_AHEAD) * stride, width, j + PREFETCH_AHEAD < count);
    float* out = dst + j * padded;
    int p = 0;
    if (j < count)
      for (; p < width; p++) out[p] = src[(uint32_t)j * stride + p];
    for (; p < padded; p++) out[p] = 0.0f;
  }
}

static void pack_keys(const AttentionBackwardArgs* ab, int task) {
  const int dk = ab->dk, dkp = ab->dkp;
  const int block = task % ab->key_blocks, head = (task / ab->key_blocks) % ab->k_heads;
  const int b = task / (ab->key_blocks * ab->k_heads);
  const int s0 = block * BK, count = min_int(BK, ab->key_length - s0);
  float* kt = ab->keys_t + (uint32_t)task * dk * BK;
  float* kr = ab->keys_r + ((uint32_t)(b * ab->k_heads + head) * ab->keys_p + s0) * dkp;
  const float* first = ab->k + ((uint32_t)(b * ab->capacity + s0) * ab->k_heads + head) * dk;
  /* The rows first (zero-padded), then Kᵀ from them while they are in L1. */
  copy_rows(first, ab->k_heads * dk, count, dk, kr, BK, dkp);
  transpose_block(kr, dkp, BK, dk, kt, BK);
}

static void pack_values(const AttentionBackwardArgs* ab, int task) {
  const int dv = ab->dv;
  const int block = task % ab->key_blocks, g = (task / ab->key_blocks) % ab->kv_heads;
  const int b = task / (ab->key_blocks * ab->kv_heads);
  const int s0 = block * BK, count = min_int(BK, ab->key_length - s0);
  float* vt = ab->values_t + (uint32_t)task * dv * BK;
  const float* first = ab->v + ((uint32_t)(b * ab->capacity + s0) * ab->kv_heads + g) * dv;
  transpose_block(first, ab->kv_heads * dv, count, dv, vt, BK);
  for (int c = 0; c < dv; c++)
    for (int j = count; j < BK; j++) vt[c * BK + j] = 0.0f;
}

/*
 * Σ a[c]·b[c] in float32, one multiply-add at a time from c = 0: the micro-kernel's order and
 * rounding, so that where a map's output equals one value row (a row one key dominates), D equals
 * that key's dP bit for bit and dP − D is exactly 0, as in exact arithmetic.
 */
INLINE float dot_in_order(const float* a, const float* b, int n) {
  v128_t acc = wasm_f32x4_splat(0.0f);
  for (int c = 0; c < n; c++) acc = madd(wasm_v128_load32_splat(a + c), wasm_v128_load32_splat(b + c), acc);
  return wasm_f32x4_extract_lane(acc, 0);
}

#define SUM_LANES 4
INLINE double sum_lanes(const double* x) { return (x[0] + x[1]) + (x[2] + x[3]); }

/*
 * One query row's dU (and λ, dλ). Differential attention: u = A − λ·B; with the norm,
 * ρ = (mean(u²) + eps)^−½, n = u·ρ, g = dOut ⊙ w · outputScale, dU = ρ·(g − n·mean(g ⊙ n)), and the
 * row adds dOut ⊙ n · outputScale to `weight_share`; then dλ = −B·dU. Standard attention: dU = dOut.
 * The norm and dλ run in doubles.
 */
static void row_terms(const AttentionBackwardArgs* ab, int b, int h, int t, float* du, float* lambda_out,
                      float* dlambda_out, double* weight_share) {
  const int dv = ab->dv;
  const uint32_t row = (uint32_t)(b * ab->tokens + t) * ab->heads + h;
  const float* dy = ab->d_out + row * dv;
  if (ab->maps == 1) {
    for (int c = 0; c < dv; c++) du[c] = dy[c];
    return;
  }
  const float* a = ab->map_outputs + row * 2 * dv;
  const float* bm = a + dv;
  const float lambda = ab->lambda_per_token ? ab->lambda[row] : ab->lambda[h];
  /* dλ from dU before it is rounded: −B·dU cancels where dU is nearly orthogonal to B. The row sums
     run in SUM_LANES interleaved partial sums (c mod SUM_LANES) added in a fixed order: independent
     chains of double additions where one chain would wait on each addition. */
  double dl[SUM_LANES] = {0.0};
  if (ab->norm) {
    double squares[SUM_LANES] = {0.0};
    for (int c = 0; c < dv; c++) {
      const double u = (double)a[c] - (double)lambda * bm[c];
      squares[c % SUM_LANES] += u * u;
    }
    const double rho = 1.0 / __builtin_sqrt(sum_lanes(squares) / dv + ab->eps);
    double projection[SUM_LANES] = {0.0};
    for (int c = 0; c < dv; c++) {
      const double u = (double)a[c] - (double)lambda * bm[c];
      const double w = ab->norm_weight ? ab->norm_weight[c] : 1.0;
      projection[c % SUM_LANES] += dy[c] * w * u;
    }
    const double mean = sum_lanes(projection) * ab->output_scale * rho / dv;
    for (int c = 0; c < dv; c++) {
      const double n = ((double)a[c] - (double)lambda * bm[c]) * rho;
      const double w = ab->norm_weight ? ab->norm_weight[c] : 1.0;
      const double g = rho * (dy[c] * w * ab->output_scale - n * mean);
      du[c] = (float)g;
      dl[c % SUM_LANES] -= bm[c] * g;
      weight_share[c] += dy[c] * n * ab->output_scale;
    }
  } else {
    for (int c = 0; c < dv; c++) du[c] = dy[c], dl[c % SUM_LANES] -= (double)bm[c] * dy[c];
  }
  *lambda_out = lambda;
  if (ab->lambda_per_token) ab->d_lambda[row] = (float)sum_lanes(dl);
  else *dlambda_out = (float)sum_lanes(dl);
}

/*
 * D of map m for rows [0, rows) of a tile: dU·O (standard attention), or D₁ = dU·A and D₂ = dU·B
 * (map 2's D is −λ·D₂, its dP −λ·dP: the factor is applied to their difference), as dot_in_order
 * computes them. Four rows at a time, one per lane, each lane the same sequence of multiply-adds.
 */
static void row_dots(const AttentionBackwardArgs* ab, int b, int h, int t0, int rows, int m, const float* du_r,
                     const float* du_t, float* d) {
  const int dv = ab->dv, dvp = ab->dvp, tq = ab->tile_rows;
  const int stride = ab->maps == 1 ? ab->heads * dv : ab->heads * 2 * dv;
  const float* x = (ab->maps == 1 ? ab->output : ab->map_outputs + m * dv) +
                   ((uint32_t)(b * ab->tokens + t0) * ab->heads + h) * (ab->maps == 1 ? dv : 2 * dv);
  int i = 0;
  for (; i + 4 <= rows; i += 4) {
    const float *x0 = x + (uint32_t)i * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int c = 0; c < dv; c++)
      acc = madd(wasm_v128_load(du_t + c * tq + i), wasm_f32x4_make(x0[c], x1[c], x2[c], x3[c]), acc);
    wasm_v128_store(d + i, acc);
  }
  for (; i < rows; i++) d[i] = dot_in_order(du_r + i * dvp, x + (uint32_t)i * stride, dv);
}

static void row_task(const AttentionBackwardArgs* ab, int task) {
  const int tq = ab->tile_rows, dk = ab->dk, dkp = ab->dkp, dv = ab->dv, dvp = ab->dvp, tp = ab->tokens_p;
  const int tile = task % ab->query_tiles, h = (task / ab->query_tiles) % ab->heads;
  const int b = task / (ab->query_tiles * ab->heads);
  const int t0 = tile * tq, rows = min_int(tq, ab->tokens - t0);
  const uint32_t head = (uint32_t)(b * ab->heads + h);
  float* du_t = ab->grads_t + (uint32_t)task * dv * tq;
  float* du_r = ab->grads_r + (head * tp + t0) * dvp;
  float* lse = ab->row_lse + head * ab->maps * tp + t0;
  float* d = ab->row_d + head * ab->maps * tp + t0;
  double* weight_share = ab->weight_shares ? ab->weight_shares + (uint32_t)task * dv : 0;
  if (weight_share)
    for (int c = 0; c < dv; c++) weight_share[c] = 0.0;
  for (int i = 0; i < tq; i++) {
    float* du = du_r + i * dvp;
    for (int c = 0; c < dvp; c++) du[c] = 0.0f;
    for (int m = 0; m < ab->maps; m++) lse[m * tp + i] = 0.0f, d[m * tp + i] = 0.0f;
    if (ab->maps == 2) ab->row_lambda[head * tp + t0 + i] = 0.0f, ab->row_dlambda[head * tp + t0 + i] = 0.0f;
    if (i + PREFETCH_AHEAD < rows) {
      const uint32_t ahead = (uint32_t)(b * ab->tokens + t0 + i + PREFETCH_AHEAD) * ab->heads + h;
      prefetch_row(ab->d_out + ahead * dv, dv, 1);
      if (ab->maps == 2) prefetch_row(ab->map_outputs + ahead * 2 * dv, 2 * dv, 1);
      else prefetch_row(ab->output + ahead * dv, dv, 1);
    }
    if (i < rows) {
      const uint32_t row = (uint32_t)(b * ab->tokens + t0 + i) * ab->heads + h;
      for (int m = 0; m < ab->maps; m++) lse[m * tp + i] = ab->log_sum_exp[row * ab->maps + m];
      float* lambda = ab->maps == 2 ? ab->row_lambda + head * tp + t0 + i : 0;
      float* dlambda = ab->maps == 2 ? ab->row_dlambda + head * tp + t0 + i : 0;
      row_terms(ab, b, h, t0 + i, du, lambda, dlambda, weight_share);
    }
  }
  transpose_block(du_r, dvp, tq, dv, du_t, tq);
  for (int m = 0; m < ab->maps; m++) row_dots(ab, b, h, t0, rows, m, du_r, du_t, d + m * tp);
  for (int m = 0; m < ab->maps; m++) {
    const int qh = query_head(ab, h, m);
    float* qt = ab->queries_t + ((uint32_t)(b * ab->q_heads + qh) * ab->query_tiles + tile) * dk * tq;
    float* qr = ab->queries_r + ((uint32_t)(b * ab->q_heads + qh) * tp + t0) * dkp;
    /* scale·q rounded as the forward rounds it, so the scores come out the same; then (scale·Q)ᵀ. */
    const float* first = ab->q + ((uint32_t)(b * ab->tokens + t0) * ab->q_heads + qh) * dk;
    const int stride = ab->q_heads * dk;
    for (int i = 0; i < tq; i++) {
      float* out = qr + i * dkp;
      int p = 0;
      prefetch_row(first + (uint32_t)(i + PREFETCH_AHEAD) * stride, dk, i + PREFETCH_AHEAD < rows);
      if (i < rows)
        for (; p < dk; p++) out[p] = first[(uint32_t)i * stride + p] * ab->scale;
      for (; p < dkp; p++) out[p] = 0.0f;
    }
    transpose_block(qr, dkp, tq, dk, qt, tq);
  }
}

static void prepare_task(const Job* job, int task, int thread) {
  const AttentionBackwardArgs* ab = JOB_ARGS(const AttentionBackwardArgs, job);
  (void)thread;
  if (task < ab->key_tasks) pack_keys(ab, task);
  else if (task < ab->key_tasks + ab->value_tasks) pack_values(ab, task - ab->key_tasks);
  else row_task(ab, task - ab->key_tasks - ab->value_tasks);
}

/* ---- phase 2: dK and dV per key block ------------------------------------------------------------ */

static const int32_t LANES[4] = {0, 1, 2, 3};

/*
 * Turns a tile's scores S_m [tq][BK] (rows i, keys j < width) into dS_m in place and dP into the
 * probabilities that weight dU in dV (P, or P₁ − λ·P₂): masked keys, and padding rows, give 0.
 */
static void tile_gradients_by_row(const AttentionBackwardArgs* ab, float* s, float* dp, int tq, int width, int t0,
                                  int s0, const float* lse, const float* d, const float* lambda) {
  const int tp = ab->tokens_p;
  const v128_t lanes = wasm_v128_load(LANES);
  for (int i = 0; i < tq; i++) {
    const int t = t0 + i;
    const v128_t limit = wasm_i32x4_splat(t < ab->tokens ? visible(ab, t) - s0 : 0);
    const v128_t lse1 = wasm_f32x4_splat(lse[i]), d1 = wasm_f32x4_splat(d[i]);
    float* s1 = s + i * BK;
    float* row = dp + i * BK;
    int j = 0;
#ifdef WIDE_LANES
    /* Natively, WIDE_LANES keys at a time, lane for lane the same arithmetic as the four-lane loops. */
    {
      const wide_int limit_wide = (wide_int){} + (t < ab->tokens ? visible(ab, t) - s0 : 0);
      const wide_vector lse1_wide = WIDE_SPLAT(lse[i]), d1_wide = WIDE_SPLAT(d[i]);
      if (ab->maps == 1) {
        for (; j + WIDE_LANES <= width; j += WIDE_LANES) {
          const wide_int mask = (wide_int)(*(const wide_int*)WIDE_LANE_INDEX + j < limit_wide);
          const wide_vector p = wide_select(wide_exp_nonpositive(WIDE_LOAD(s1 + j) - lse1_wide), mask);
          WIDE_STORE(s1 + j, p * (WIDE_LOAD(row + j) - d1_wide));
          WIDE_STORE(row + j, p);
        }
      } else {
        const wide_vector lse2_wide = WIDE_SPLAT(lse[tp + i]), d2_wide = WIDE_SPLAT(d[tp + i]);
        const wide_vector lam_wide = WIDE_SPLAT(lambda[i]);
        float* s2 = s + (tq + i) * BK;
        for (; j + WIDE_LANES <= width; j += WIDE_LANES) {
          const wide_int mask = (wide_int)(*(const wide_int*)WIDE_LANE_INDEX + j < limit_wide);
          const wide_vector p1 = wide_select(wide_exp_nonpositive(WIDE_LOAD(s1 + j) - lse1_wide), mask);
          const wide_vector p2 = wide_select(wide_exp_nonpositive(WIDE_LOAD(s2 + j) - lse2_wide), mask);
          const wide_vector dP = WIDE_LOAD(row + j);
          WIDE_STORE(s1 + j, p1 * (dP - d1_wide));
          WIDE_STORE(s2 + j, (p2 * -lam_wide) * (dP - d2_wide));
          WIDE_STORE(row + j, p1 - lam_wide * p2);
        }
      }
    }
#endif
    if (ab->maps == 1) {
      for (; j < width; j += 4) {
        const v128_t mask = wasm_i32x4_lt(wasm_i32x4_add(lanes, wasm_i32x4_splat(j)), limit);
        const v128_t p = wasm_v128_and(exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(s1 + j), lse1)), mask);
        wasm_v128_store(s1 + j, wasm_f32x4_mul(p, wasm_f32x4_sub(wasm_v128_load(row + j), d1)));
        wasm_v128_store(row + j, p);
      }
      continue;
    }
    const v128_t lse2 = wasm_f32x4_splat(lse[tp + i]), d2 = wasm_f32x4_splat(d[tp + i]);
    const v128_t lam = wasm_f32x4_splat(lambda[i]);
    float* s2 = s + (tq + i) * BK;
    for (; j < width; j += 4) {
      const v128_t mask = wasm_i32x4_lt(wasm_i32x4_add(lanes, wasm_i32x4_splat(j)), limit);
      const v128_t p1 = wasm_v128_and(exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(s1 + j), lse1)), mask);
      const v128_t p2 = wasm_v128_and(exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(s2 + j), lse2)), mask);
      const v128_t dP = wasm_v128_load(row + j);
      wasm_v128_store(s1 + j, wasm_f32x4_mul(p1, wasm_f32x4_sub(dP, d1)));
      /* dS₂ = P₂ ⊙ (−λ·dP + λ·D₂) = −λ·P₂ ⊙ (dP − D₂) */
      wasm_v128_store(s2 + j, wasm_f32x4_mul(wasm_f32x4_mul(p2, wasm_f32x4_neg(lam)), wasm_f32x4_sub(dP, d2)));
      wasm_v128_store(row + j, wasm_f32x4_sub(p1, wasm_f32x4_mul(lam, p2)));
    }
  }
}

static void key_task(const Job* job, int task, int thread) {
  const AttentionBackwardArgs* ab = JOB_ARGS(const AttentionBackwardArgs, job);
  const int tq = ab->tile_rows, dk = ab->dk, dkp = ab->dkp, dv = ab->dv, dvp = ab->dvp, maps = ab->maps;
  const int tp = ab->tokens_p;
  const int groups = ab->batch * ab->kv_heads;
  /* The first key blocks see the most query tiles when causal: they get the highest task numbers. */
  const int block = ab->key_blocks - 1 - task / groups, b = (task % groups) / ab->kv_heads, g = task % ab->kv_heads;
  const int s0 = block * BK, count = min_int(BK, ab->key_length - s0);
  const int width = round_up(count, NR), key_rows = round_up(count, MR);
  float* dk_acc = ab->scratch + (uint32_t)thread * ab->thread_floats; /* [key_maps][BK][dkp] */
  float* dv_acc = dk_acc + ab->key_maps * BK * dkp;                   /* [BK][dvp] */
  float* s = dv_acc + BK * dvp;                                       /* [maps][tq][BK] */
  float* dp = s + maps * tq * BK;                                     /* [tq][BK] */
  __builtin_memset(dk_acc, 0, sizeof(float) * (ab->key_maps * BK * dkp + BK * dvp));

  const float* vt = ab->values_t + ((uint32_t)(b * ab->kv_heads + g) * ab->key_blocks + block) * dv * BK;
  const int group_heads = ab->heads / ab->kv_heads;
  /* Query t sees key s0 from t = s0 − keyOffset on when causal. */
  const int first_tile = ab->causal ? max_int(0, s0 - ab->key_offset) / tq : 0;
  for (int h = g * group_heads; h < (g + 1) * group_heads; h++) {
    const uint32_t head = (uint32_t)(b * ab->heads + h);
    for (int tile = first_tile; tile < ab->query_tiles; tile++) {
      const int t0 = tile * tq;
      for (int m = 0; m < maps; m++) {
        const float* kt =
            ab->keys_t + ((uint32_t)(b * ab->k_heads + key_head(ab, g, m)) * ab->key_blocks + block) * dk * BK;
        const uint32_t query_tile = (uint32_t)(b * ab->q_heads + query_head(ab, h, m)) * ab->query_tiles + tile;
        const float* qt = ab->queries_t + query_tile * dk * tq;
        float* sm = s + m * tq * BK;
        for (int i = 0; i < tq; i += MR)
          microkernel_span(dk, qt + i, tq, kt, BK, sm + i * BK, BK, width, 0);
      }
      const float* du_t = ab->grads_t + (head * ab->query_tiles + tile) * dv * tq;
      for (int i = 0; i < tq; i += MR)
        microkernel_span(dv, du_t + i, tq, vt, BK, dp + i * BK, BK, width, 0);
      const uint32_t rows = head * maps * tp + t0;
      tile_gradients_by_row(ab, s, dp, tq, width, t0, s0, ab->row_lse + rows, ab->row_d + rows,
                            maps == 2 ? ab->row_lambda + head * tp + t0 : 0);
      const float* du_r = ab->grads_r + (head * tp + t0) * dvp;
      for (int j = 0; j < key_rows; j += MR)
        microkernel_span(tq, dp + j, BK, du_r, dvp, dv_acc + j * dvp, dvp, dvp, 1);
      for (int m = 0; m < maps; m++) {
        const float* qr = ab->queries_r + ((uint32_t)(b * ab->q_heads + query_head(ab, h, m)) * tp + t0) * dkp;
        float* acc = dk_acc + (ab->key_maps == 2 ? m : 0) * BK * dkp;
        const float* sm = s + m * tq * BK;
        for (int j = 0; j < key_rows; j += MR)
          microkernel_span(tq, sm + j, BK, qr, dkp, acc + j * dkp, dkp, dkp, 1);
      }
    }
  }
  for (int j = 0; j < count; j++) {
    const uint32_t key = (uint32_t)(b * ab->capacity + s0 + j);
    float* dv_row = ab->grad_v + (key * ab->kv_heads + g) * dv;
    for (int c = 0; c < dv; c++) dv_row[c] = dv_acc[j * dvp + c];
    for (int m = 0; m < ab->key_maps; m++) {
      float* dk_row = ab->grad_k + (key * ab->k_heads + key_head(ab, g, m)) * dk;
      for (int p = 0; p < dk; p++) dk_row[p] = dk_acc[(m * BK + j) * dkp + p];
    }
  }
}

/* ---- phase 3: dQ per query tile ------------------------------------------------------------------ */

/* The same as tile_gradients_by_row on transposed tiles Sᵀ_m [width][tq], queries in the lanes. */
static void tile_gradients_by_column(const AttentionBackwardArgs* ab, float* st, const float* dpt, int tq, int keys,
                                     int s0, const int32_t* limits, const float* lse, const float* d,
                                     const float* lambda) {
  const int tp = ab->tokens_p;
  for (int j = 0; j < keys; j++) {
    const v128_t key = wasm_i32x4_splat(s0 + j);
    float* s1 = st + j * tq;
    float* s2 = st + (BK + j) * tq;
    const float* row = dpt + j * tq;
    int i = 0;
#ifdef WIDE_LANES
    /* Natively, WIDE_LANES queries at a time, lane for lane the same arithmetic as the four-lane loop. */
    const wide_int key_wide = (wide_int){} + (s0 + j);
    for (; i + WIDE_LANES <= tq; i += WIDE_LANES) {
      const wide_int mask = (wide_int)(key_wide < *(const wide_int_unaligned*)(limits + i));
      const wide_vector p1 = wide_select(wide_exp_nonpositive(WIDE_LOAD(s1 + i) - WIDE_LOAD(lse + i)), mask);
      const wide_vector dP = WIDE_LOAD(row + i);
      WIDE_STORE(s1 + i, p1 * (dP - WIDE_LOAD(d + i)));
      if (ab->maps == 2) {
        const wide_vector p2 = wide_select(wide_exp_nonpositive(WIDE_LOAD(s2 + i) - WIDE_LOAD(lse + tp + i)), mask);
        const wide_vector scaled = p2 * -WIDE_LOAD(lambda + i);
        WIDE_STORE(s2 + i, scaled * (dP - WIDE_LOAD(d + tp + i)));
      }
    }
#endif
    for (; i < tq; i += 4) {
      const v128_t mask = wasm_i32x4_lt(key, wasm_v128_load(limits + i));
      const v128_t x1 = wasm_f32x4_sub(wasm_v128_load(s1 + i), wasm_v128_load(lse + i));
      const v128_t p1 = wasm_v128_and(exp_nonpositive(x1), mask);
      const v128_t dP = wasm_v128_load(row + i);
      wasm_v128_store(s1 + i, wasm_f32x4_mul(p1, wasm_f32x4_sub(dP, wasm_v128_load(d + i))));
      if (ab->maps == 2) {
        const v128_t p2 =
            wasm_v128_and(exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(s2 + i), wasm_v128_load(lse + tp + i))), mask);
        const v128_t scaled = wasm_f32x4_mul(p2, wasm_f32x4_neg(wasm_v128_load(lambda + i)));
        wasm_v128_store(s2 + i, wasm_f32x4_mul(scaled, wasm_f32x4_sub(dP, wasm_v128_load(d + tp + i))));
      }
    }
  }
}

static void query_task(const Job* job, int task, int thread) {
  const AttentionBackwardArgs* ab = JOB_ARGS(const AttentionBackwardArgs, job);
  const int tq = ab->tile_rows, dk = ab->dk, dkp = ab->dkp, dv = ab->dv, maps = ab->maps, tp = ab->tokens_p;
  const int heads_total = ab->batch * ab->heads;
  /* The last query tiles see the most keys when causal: they get the highest task numbers. */
  const int tile = task / heads_total, b = (task % heads_total) / ab->heads, h = task % ab->heads;
  const int g = h * ab->kv_heads / ab->heads;
  const int t0 = tile * tq, rows = min_int(tq, ab->tokens - t0);
  const uint32_t head = (uint32_t)(b * ab->heads + h);
  float* dq_acc = ab->scratch + (uint32_t)thread * ab->thread_floats; /* [maps][tq][dkp] */
  float* st = dq_acc + maps * tq * dkp;                               /* [maps][BK][tq] */
  float* dpt = st + maps * BK * tq;                                   /* [BK][tq] */
  int32_t* limits = (int32_t*)(dpt + BK * tq);                        /* [tq]: keys each query sees */
  __builtin_memset(dq_acc, 0, sizeof(float) * maps * tq * dkp);
  for (int i = 0; i < tq; i++) limits[i] = i < rows ? visible(ab, t0 + i) : 0;

  const float* du_t = ab->grads_t + (head * ab->query_tiles + tile) * dv * tq;
  const float* lse = ab->row_lse + head * maps * tp + t0;
  const float* d = ab->row_d + head * maps * tp + t0;
  const float* lambda = maps == 2 ? ab->row_lambda + head * tp + t0 : 0;
  const int end = visible(ab, t0 + rows - 1);
  for (int block = 0; block * BK < end; block++) {
    const int s0 = block * BK, count = min_int(BK, end - s0), key_rows = round_up(count, MR);
    for (int m = 0; m < maps; m++) {
      const float* kt =
          ab->keys_t + ((uint32_t)(b * ab->k_heads + key_head(ab, g, m)) * ab->key_blocks + block) * dk * BK;
      const uint32_t query_tile = (uint32_t)(b * ab->q_heads + query_head(ab, h, m)) * ab->query_tiles + tile;
      const float* qt = ab->queries_t + query_tile * dk * tq;
      float* sm = st + m * BK * tq;
      for (int j = 0; j < key_rows; j += MR)
        microkernel_span(dk, kt + j, BK, qt, tq, sm + j * tq, tq, tq, 0);
    }
    const float* vt = ab->values_t + ((uint32_t)(b * ab->kv_heads + g) * ab->key_blocks + block) * dv * BK;
    for (int j = 0; j < key_rows; j += MR)
      microkernel_span(dv, vt + j, BK, du_t, tq, dpt + j * tq, tq, tq, 0);
    tile_gradients_by_column(ab, st, dpt, tq, key_rows, s0, limits, lse, d, lambda);
    for (int m = 0; m < maps; m++) {
      const float* kr = ab->keys_r + ((uint32_t)(b * ab->k_heads + key_head(ab, g, m)) * ab->keys_p + s0) * dkp;
      const float* sm = st + m * BK * tq;
      float* acc = dq_acc + m * tq * dkp;
      for (int i = 0; i < tq; i += MR)
        microkernel_span(key_rows, sm + i, tq, kr, dkp, acc + i * dkp, dkp, dkp, 1);
    }
  }
  for (int m = 0; m < maps; m++)
    for (int i = 0; i < rows; i++) {
      float* dq_row = ab->grad_q + ((uint32_t)(b * ab->tokens + t0 + i) * ab->q_heads + query_head(ab, h, m)) * dk;
      const float* acc = dq_acc + (m * tq + i) * dkp;
      for (int p = 0; p < dk; p++) dq_row[p] = ab->scale * acc[p];
    }
}

/* ---- phase 4: the fixed-order sums of differential attention --------------------------------------- */

static void reduce_task(const Job* job, int task, int thread) {
  const AttentionBackwardArgs* ab = JOB_ARGS(const AttentionBackwardArgs, job);
  (void)task, (void)thread;
  const int tp = ab->tokens_p;
  if (!ab->lambda_per_token) {
    for (int h = 0; h < ab->heads; h++) {
      double sum = 0.0;
      for (int b = 0; b < ab->batch; b++)
        for (int t = 0; t < ab->tokens; t++) sum += ab->row_dlambda[(uint32_t)(b * ab->heads + h) * tp + t];
      ab->d_lambda[h] = (float)sum;
    }
  }
  if (ab->d_norm_weight) {
    const int shares = ab->batch * ab->heads * ab->query_tiles;
    for (int c = 0; c < ab->dv; c++) {
      double sum = 0.0;
      for (int i = 0; i < shares; i++) sum += ab->weight_shares[(uint32_t)i * ab->dv + c];
      ab->d_norm_weight[c] = (float)sum;
    }
  }
}

static int begin_reduce(Job* job) { return job_begin(job, reduce_task, 1, 0); }
static int begin_queries(Job* job) {
  const AttentionBackwardArgs* ab = JOB_ARGS(const AttentionBackwardArgs, job);
  return job_begin(job, query_task, ab->query_tiles * ab->batch * ab->heads, ab->maps == 2 ? begin_reduce : 0);
}
static int begin_keys(Job* job) {
  const AttentionBackwardArgs* ab = JOB_ARGS(const AttentionBackwardArgs, job);
  return job_begin(job, key_task, ab->key_blocks * ab->batch * ab->kv_heads, begin_queries);
}

/* ---- entry ------------------------------------------------------------------------------------------ */

INLINE uint64_t aligned(uint64_t floats) { return (floats + 3) & ~(uint64_t)3; }

/*
 * Sets the shape of the next backward call (maps = 2: differential attention, q with 2·heads
 * half-heads; 1: standard attention) and returns the scratch bytes it needs, saturated at 4 GiB − 1:
 * the packed operands (about twice q, k, v and dOut), a few floats per row, and `threads` work areas.
 */
uint32_t attention_backward_configure(Job* job, int batch, int tokens, int heads, int kv_heads, int k_heads, int dk,
                                      int dv, int capacity, int maps, int lambda_per_token, int causal, int key_offset,
                                      int key_length, float scale, int norm, float eps, float output_scale, int threads)
  {
  AttentionBackwardArgs* ab = JOB_ARGS(AttentionBackwardArgs, job);
  ab->batch = batch, ab->tokens = tokens, ab->heads = heads, ab->kv_heads = kv_heads, ab->k_heads = k_heads;
  ab->dk = dk, ab->dv = dv, ab->capacity = capacity, ab->maps = maps, ab->q_heads = maps * heads;
  ab->shared_keys = maps == 2 && k_heads == kv_heads;
  ab->key_maps = maps == 2 && !ab->shared_keys ? 2 : 1;
  ab->lambda_per_token = lambda_per_token, ab->causal = causal;
  ab->key_offset = key_offset, ab->key_length = key_length;
  ab->scale = scale, ab->norm = norm, ab->eps = eps, ab->output_scale = output_scale;
  ab->tile_rows = min_int(TQ, round_up(tokens, NR));
  ab->query_tiles = (tokens + ab->tile_rows - 1) / ab->tile_rows;
  ab->tokens_p = ab->query_tiles * ab->tile_rows;
  ab->key_blocks = (key_length + BK - 1) / BK;
  ab->keys_p = ab->key_blocks * BK;
  ab->dkp = round_up(dk, NR), ab->dvp = round_up(dv, NR);
  ab->key_tasks = batch * k_heads * ab->key_blocks;
  ab->value_tasks = batch * kv_heads * ab->key_blocks;
  ab->row_tasks = batch * heads * ab->query_tiles;
  const uint64_t tq = ab->tile_rows, rows = (uint64_t)batch * heads * ab->tokens_p;
  const uint64_t phase2 = ab->key_maps * BK * ab->dkp + BK * ab->dvp + (maps + 1) * tq * BK;
  const uint64_t phase3 = maps * tq * ab->dkp + (maps + 1) * BK * tq + tq;
  ab->thread_floats = (uint32_t)aligned(phase2 > phase3 ? phase2 : phase3);
  /* The regions attention_backward_prepare lays out, in its order. */
  const uint64_t floats = aligned((uint64_t)ab->key_tasks * dk * BK) +
                          aligned((uint64_t)batch * k_heads * ab->keys_p * ab->dkp) +
                          aligned((uint64_t)ab->value_tasks * dv * BK) +
                          aligned((uint64_t)batch * ab->q_heads * ab->query_tiles * dk * tq) +
                          aligned((uint64_t)batch * ab->q_heads * ab->tokens_p * ab->dkp) +
                          aligned((uint64_t)ab->row_tasks * dv * tq) + aligned(rows * ab->dvp) +
                          2 * aligned(rows * maps) + (maps == 2 ? 2 * aligned(rows) : 0) +
                          (maps == 2 && norm ? 2 * aligned((uint64_t)ab->row_tasks * dv) : 0) +
                          (uint64_t)threads * ab->thread_floats;
  const uint64_t bytes = floats * 4;
  return bytes > 0xffffffffu ? 0xffffffffu : (uint32_t)bytes;
}

/*
 * Prepares the configured call. Differential attention reads lambda, norm_weight (0: weight 1, or no
 * norm) and map_outputs and writes d_lambda and d_norm_weight (0: none); standard attention reads
 * output. Returns the first phase's task count.
 */
int attention_backward_prepare(Job* job, const float* q, const float* k, const float* v, const float* lambda,
                               const float* norm_weight, const float* log_sum_exp, const float* map_outputs,
                               const float* output, const float* d_out, float* grad_q, float* grad_k, float* grad_v,
                               float* d_lambda, float* d_norm_weight, float* scratch) {
  AttentionBackwardArgs* ab = JOB_ARGS(AttentionBackwardArgs, job);
  ab->q = q, ab->k = k, ab->v = v, ab->lambda = lambda, ab->norm_weight = norm_weight, ab->log_sum_exp = log_sum_exp;
  ab->map_outputs = map_outputs, ab->output = output, ab->d_out = d_out;
  ab->grad_q = grad_q, ab->grad_k = grad_k, ab->grad_v = grad_v;
  ab->d_lambda = d_lambda, ab->d_norm_weight = d_norm_weight;
  const uint64_t tq = ab->tile_rows, rows = (uint64_t)ab->batch * ab->heads * ab->tokens_p;
  float* next = scratch;
  ab->keys_t = next, next += aligned((uint64_t)ab->key_tasks * ab->dk * BK);
  ab->keys_r = next, next += aligned((uint64_t)ab->batch * ab->k_heads * ab->keys_p * ab->dkp);
  ab->values_t = next, next += aligned((uint64_t)ab->value_tasks * ab->dv * BK);
  ab->queries_t = next, next += aligned((uint64_t)ab->batch * ab->q_heads * ab->query_tiles * ab->dk * tq);
  ab->queries_r = next, next += aligned((uint64_t)ab->batch * ab->q_heads * ab->tokens_p * ab->dkp);
  ab->grads_t = next, next += aligned((uint64_t)ab->row_tasks * ab->dv * tq);
  ab->grads_r = next, next += aligned(rows * ab->dvp);
  ab->row_lse = next, next += aligned(rows * ab->maps);
  ab->row_d = next, next += aligned(rows * ab->maps);
  ab->row_lambda = ab->row_dlambda = 0;
  ab->weight_shares = 0;
  if (ab->maps == 2) {
    ab->row_lambda = next, next += aligned(rows);
    ab->row_dlambda = next, next += aligned(rows);
    if (ab->norm) ab->weight_shares = (double*)next, next += 2 * aligned((uint64_t)ab->row_tasks * ab->dv);
  }
  ab->scratch = next;
  return job_begin(job, prepare_task, ab->key_tasks + ab->value_tasks + ab->row_tasks, begin_keys);
}
