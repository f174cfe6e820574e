/*
 * Streaming attention, standard (one softmax map) and differential (two maps, DIFF Transformer,
 * Ye et al. 2025, eq. 1), as FlashAttention does it (Dao et al. 2022): a task owns TQ query rows
 * of one head, visits the keys in blocks of BK with an online softmax per map (running maximum m,
 * running sum l, output accumulator O rescaled by e^(m_old − m_new) when the maximum grows), so the
 * scratch is O(TQ·(BK + dv)) per thread and nothing of size T×S ever exists.
 *
 * Both products of a key block are micro-kernel calls (./microkernel.h), in the layouts it wants:
 *   Sᵀ[j][i] = Σ_p Kᵀ[p][j] · Qᵀ[p][i]     keys as rows, queries as columns
 *   O[i][c] += Σ_j Sᵀ[j][i] · V[j][c]        the probabilities read back as a k-major A operand
 * so the softmax works down the columns of Sᵀ, four queries per vector, with no horizontal sums.
 *
 *   phase 1  copy K into per-block k-major tiles and V into contiguous per-block rows padded to a
 *            multiple of 8, once per call instead of once per query tile (reading V rows in place,
 *            a head's row stride apart, made the P·V product a quarter slower);
 *   phase 2  one task per (query tile, batch, head); the last query tiles, which see the most keys
 *            when causal, are claimed first.
 * Decoding (at most MR query rows) takes a path of its own, below.
 *
 * A masked score becomes −inf, whose exp is exactly 0. The exp's argument is formed as s − m in the
 * scores' own units and only then multiplied by log₂e: scaling the queries by log₂e instead made the
 * scores of exactly representable inputs inexact, and logits of ±1e4 lost five orders of NMSE.
 *
 * Differential attention combines the maps per row, out = O₁/l₁ − λ·O₂/l₂, then applies the fused
 * per-head RMSNorm · weight · (1 − λinit) when asked. Rows of q and k past the valid range are
 * never read: keys stop at keyLength, queries at T.
 *
 * With statistics (the *WithStatistics kernels, for training) each row also saves every map's
 * log-sum-exp m + ln l and, for differential attention, each map's own output O_m/l_m. Decoding's
 * path is then not taken: its dot products sum in another order, and the backward
 * (./attention-backward.c) must recompute exactly the scores whose maximum was saved.
 */
#include "entry-points.generated.h"
#include "job.h"
#include "microkernel.h"

#define TQ 64 /* query rows per task (a multiple of NR) */
#define BK 64 /* keys per block (a multiple of MR) */

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float* q;
  const float* k;
  const float* v;
  const float* lambda;
  const float* norm_weight; /* null: weight 1 */
  float* out;
  int batch, tokens, heads, kv_heads, dk, dv, capacity;
  int maps;         /* 2: differential, 1: standard */
  int q_heads;      /* heads of q: 2H when differential */
  int k_heads;      /* heads of k: 2Hkv for DIFF V1, Hkv for V2 (shared keys) and standard */
  int shared_keys, lambda_per_token;
  int causal, key_offset, key_length;
  float scale;
  int norm;
  float eps, output_scale;
  float* log_sum_exp; /* [B, T, H, maps], or null without statistics */
  float* map_outputs; /* [B, T, H, 2, dv], or null */
  int decode; /* at most MR query rows: one task per (query, head), K and V read in place */
  int tile_rows, query_tiles, key_blocks;
  int dvp;         /* dv rounded up to NR */
  float* keys_t;   /* [batch][k_heads][key_blocks][dk][BK] */
  float* values_p; /* [batch][kv_heads][key_blocks·BK][dvp] */
  float* scratch;  /* thread t uses [t·thread_floats, (t + 1)·thread_floats) */
  uint32_t thread_floats;
  int transpose_tasks;
} AttentionArgs;
JOB_ARGS_FIT(AttentionArgs);

/* How many keys query t reads: [0, keyLength), cut at its own position keyOffset + t when causal. */
INLINE int visible_keys(const AttentionArgs* at, int t) {
  return at->causal ? min_int(at->key_length, at->key_offset + t + 1) : at->key_length;
}

/* ---- phase 1: K transposed per block, V packed ---------------------------------------------------- */

static void transpose_task(const Job* job, int task, int thread) {
  const AttentionArgs* at = JOB_ARGS(const AttentionArgs, job);
  (void)thread;
  const int dk = at->dk;
  if (task < at->transpose_tasks) {
    const int block = task % at->key_blocks, head = (task / at->key_blocks) % at->k_heads, b = task / (at->key_blocks * at->k_heads);
    const int s0 = block * BK, count = min_int(BK, at->key_length - s0);
    float* dst = at->keys_t + (uint32_t)task * dk * BK;
    const float* first = at->k + ((uint32_t)(b * at->capacity + s0) * at->k_heads + head) * dk;
    transpose_block(first, at->k_heads * dk, count, dk, dst, BK);
    for (int p = 0; p < dk; p++)
      for (int j = count; j < BK; j++) dst[p * BK + j] = 0.0f;
  } else {
    task -= at->transpose_tasks;
    const int block = task % at->key_blocks, g = (task / at->key_blocks) % at->kv_heads, b = task / (at->key_blocks * at->kv_heads);
    const int s0 = block * BK, count = min_int(BK, at->key_length - s0);
    float* dst = at->values_p + ((uint32_t)(b * at->kv_heads + g) * at->key_blocks * BK + s0) * at->dvp;
    for (int j = 0; j < count; j++) {
      const float* row = at->v + ((uint32_t)(b * at->capacity + s0 + j) * at->kv_heads + g) * at->dv;
      for (int c = 0; c < at->dvp; c++) dst[j * at->dvp + c] = c < at->dv ? row[c] : 0.0f;
    }
  }
}

/* ---- phase 2: one query tile of one head ------------------------------------------------------- */

/*
 * The online softmax of one key block for one map: turns the block's scores Sᵀ[j][i] into
 * probabilities e^(s − m_new) in place (exactly 0 where the key is masked), updates m and l, and
 * leaves each query's rescaling factor e^(m_old − m_new) in `factor`.
 */
static void softmax_block(const AttentionArgs* at, float* s, int tq, int count, int s0, int t0, int masked, float* max,
                          float* sum, float* factor) {
  const v128_t minus_infinity = wasm_f32x4_splat(-__builtin_inff());
  for (int i = 0; i < tq; i += 4) {
    v128_t block_max = minus_infinity;
    if (masked) {
      /* Key s0 + j is visible to query t0 + i + lane iff j < limit[lane]; hide the others as −inf. */
      const v128_t limit = wasm_i32x4_make(visible_keys(at, t0 + i) - s0, visible_keys(at, t0 + i + 1) - s0, visible_keys(at, t0 + i + 2) - s0,
                                           visible_keys(at, t0 + i + 3) - s0);
      for (int j = 0; j < count; j++) {
        const v128_t x = wasm_v128_bitselect(wasm_v128_load(s + j * tq + i), minus_infinity, wasm_i32x4_gt(limit, wasm_i32x4_splat(j)));
        wasm_v128_store(s + j * tq + i, x);
        block_max = wasm_f32x4_pmax(block_max, x);
      }
    } else {
      for (int j = 0; j < count; j++) block_max = wasm_f32x4_pmax(block_max, wasm_v128_load(s + j * tq + i));
    }
    const v128_t old_max = wasm_v128_load(max + i);
    const v128_t new_max = wasm_f32x4_pmax(old_max, block_max);
    const v128_t rescale = exp_nonpositive(wasm_f32x4_sub(old_max, new_max));
    v128_t total = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < count; j++) {
      const v128_t p = exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(s + j * tq + i), new_max));
      wasm_v128_store(s + j * tq + i, p);
      total = wasm_f32x4_add(total, p);
    }
    wasm_v128_store(max + i, new_max);
    wasm_v128_store(sum + i, madd(wasm_v128_load(sum + i), rescale, total));
    wasm_v128_store(factor + i, rescale);
  }
}

/* row[0..width) *= factor, width a multiple of 4. */
INLINE void scale_row(float* row, int width, float factor) {
  const v128_t f = wasm_f32x4_splat(factor);
  for (int c = 0; c < width; c += 4) wasm_v128_store(row + c, wasm_f32x4_mul(wasm_v128_load(row + c), f));
}

/*
 * Writes query t's output row of head h from its accumulators (o1, o2 un-normalised, l1, l2 their
 * softmax sums): O₁/l₁, or for differential attention O₁/l₁ − λ·O₂/l₂ with the fused RMSNorm.
 * Overwrites o1.
 */
static void finish_row(const AttentionArgs* at, int b, int h, int t, float* o1, const float* o2, float sum1, float sum2,
                       float max1, float max2) {
  const int dv = at->dv;
  const uint32_t row = (uint32_t)(b * at->tokens + t) * at->heads + h;
  float* out = at->out + row * dv;
  if (at->log_sum_exp) {
    at->log_sum_exp[row * at->maps] = log_sum_exp(max1, sum1);
    if (at->maps == 2) {
      at->log_sum_exp[row * 2 + 1] = log_sum_exp(max2, sum2);
      float* a = at->map_outputs + row * 2 * dv;
      const float w1 = 1.0f / sum1, w2 = 1.0f / sum2;
      for (int c = 0; c < dv; c++) a[c] = o1[c] * w1, a[dv + c] = o2[c] * w2;
    }
  }
  if (at->maps == 1) {
    const float inverse = 1.0f / sum1;
    for (int c = 0; c < dv; c++) out[c] = o1[c] * inverse;
    return;
  }
  const float lambda = at->lambda_per_token ? at->lambda[(uint32_t)(b * at->tokens + t) * at->heads + h] : at->lambda[h];
  const float w1 = 1.0f / sum1, w2 = lambda / sum2;
  float sum_of_squares = 0.0f;
  for (int c = 0; c < dv; c++) {
    const float d = o1[c] * w1 - o2[c] * w2;
    o1[c] = d;
    sum_of_squares += d * d;
  }
  if (!at->norm) {
    for (int c = 0; c < dv; c++) out[c] = o1[c];
    return;
  }
  const float gain = at->output_scale / __builtin_sqrtf(sum_of_squares / dv + at->eps);
  if (at->norm_weight)
    for (int c = 0; c < dv; c++) out[c] = o1[c] * gain * at->norm_weight[c];
  else
    for (int c = 0; c < dv; c++) out[c] = o1[c] * gain;
}

static void attention_task(const Job* job, int task, int thread) {
  const AttentionArgs* at = JOB_ARGS(const AttentionArgs, job);
  const int tq = at->tile_rows, dk = at->dk, dvp = at->dvp, maps = at->maps;
  const int heads_total = at->batch * at->heads;
  const int tile = task / heads_total, b = (task % heads_total) / at->heads, h = task % at->heads;
  const int g = h * at->kv_heads / at->heads;
  const int t0 = tile * tq, rows = min_int(tq, at->tokens - t0);

  float* qt = at->scratch + (uint32_t)thread * at->thread_floats; /* [maps][dk][tq] */
  float* s = qt + maps * dk * tq;                                 /* [BK][tq] */
  float* o = s + BK * tq;                                         /* [maps][tq][dvp] */
  float* max = o + maps * tq * dvp;                               /* [maps][tq] */
  float* sum = max + maps * tq;                                   /* [maps][tq] */
  float* factor = sum + maps * tq;                                /* [tq] */

  for (int m = 0; m < maps; m++) {
    const int qh = maps == 2 ? 2 * h + m : h;
    float* dst = qt + m * dk * tq;
    const float* first = at->q + ((uint32_t)(b * at->tokens + t0) * at->q_heads + qh) * dk;
    transpose_block(first, at->q_heads * dk, rows, dk, dst, tq);
    /* The softmax scale is folded into the queries once (rounded as row[p]·scale would be). */
    for (int p = 0; p < dk; p++) {
      float* column = dst + p * tq;
      for (int i = 0; i < rows; i++) column[i] *= at->scale;
      for (int i = rows; i < tq; i++) column[i] = 0.0f;
    }
    for (int i = 0; i < tq; i++) {
      max[m * tq + i] = -__builtin_inff();
      sum[m * tq + i] = 0.0f;
    }
  }
  __builtin_memset(o, 0, sizeof(float) * maps * tq * dvp);

  /* Visible keys grow with t, so the tile's last row sees the most and its first row the fewest. */
  const int end = visible_keys(at, t0 + rows - 1), first_row_end = visible_keys(at, t0);
  for (int block = 0; block * BK < end; block++) {
    const int s0 = block * BK, count = min_int(BK, end - s0);
    const int masked = s0 + count > first_row_end;
    const float* values = at->values_p + ((uint32_t)(b * at->kv_heads + g) * at->key_blocks * BK + s0) * dvp;
    for (int m = 0; m < maps; m++) {
      const int kh = at->shared_keys || maps == 1 ? g : 2 * g + m;
      const float* kt = at->keys_t + ((uint32_t)(b * at->k_heads + kh) * at->key_blocks + block) * dk * BK;
      const float* q = qt + m * dk * tq;
      for (int j = 0; j < count; j += MR)
        microkernel_span(dk, kt + j, BK, q, tq, s + j * tq, tq, tq, 0);
      softmax_block(at, s, tq, count, s0, t0, masked, max + m * tq, sum + m * tq, factor);
      float* om = o + m * tq * dvp;
      if (block > 0)
        for (int i = 0; i < tq; i++)
          if (factor[i] != 1.0f) scale_row(om + i * dvp, dvp, factor[i]);
      for (int i = 0; i < tq; i += MR)
        microkernel_span(count, s + i, tq, values, dvp, om + i * dvp, dvp, dvp, 1);
    }
  }

  for (int i = 0; i < rows; i++)
    finish_row(at, b, h, t0 + i, o + i * dvp, o + (tq + i) * dvp, sum[i], sum[tq + i], max[i], max[tq + i]);
}

/* ---- decoding: a few query rows, each on its own --------------------------------------------------- */

/*
 * out[0..width) += Σ_j p1[j]·V_j (and o2 += Σ_j p2[j]·V_j when p2 is given) over `count` value rows
 * `stride` apart: sixteen columns of both accumulators stay in registers while the rows stream by.
 */
static void accumulate_values(const float* values, int stride, int count, int width, const float* p1, const float* p2, float* o1, float* o2) {
  int c = 0;
  for (; c + 16 <= width; c += 16) {
    v128_t a0 = wasm_v128_load(o1 + c), a1 = wasm_v128_load(o1 + c + 4), a2 = wasm_v128_load(o1 + c + 8), a3 = wasm_v128_load(o1 + c + 12);
    if (p2) {
      v128_t b0 = wasm_v128_load(o2 + c), b1 = wasm_v128_load(o2 + c + 4), b2 = wasm_v128_load(o2 + c + 8), b3 = wasm_v128_load(o2 + c + 12);
      for (int j = 0; j < count; j++) {
        const float* row = values + (uint32_t)j * stride + c;
        const v128_t v0 = wasm_v128_load(row), v1 = wasm_v128_load(row + 4), v2 = wasm_v128_load(row + 8), v3 = wasm_v128_load(row + 12);
        const v128_t x = wasm_v128_load32_splat(p1 + j), y = wasm_v128_load32_splat(p2 + j);
        a0 = madd(x, v0, a0), a1 = madd(x, v1, a1), a2 = madd(x, v2, a2), a3 = madd(x, v3, a3);
        b0 = madd(y, v0, b0), b1 = madd(y, v1, b1), b2 = madd(y, v2, b2), b3 = madd(y, v3, b3);
      }
      wasm_v128_store(o2 + c, b0), wasm_v128_store(o2 + c + 4, b1), wasm_v128_store(o2 + c + 8, b2), wasm_v128_store(o2 + c + 12, b3);
    } else {
      for (int j = 0; j < count; j++) {
        const float* row = values + (uint32_t)j * stride + c;
        const v128_t x = wasm_v128_load32_splat(p1 + j);
        a0 = madd(x, wasm_v128_load(row), a0), a1 = madd(x, wasm_v128_load(row + 4), a1);
        a2 = madd(x, wasm_v128_load(row + 8), a2), a3 = madd(x, wasm_v128_load(row + 12), a3);
      }
    }
    wasm_v128_store(o1 + c, a0), wasm_v128_store(o1 + c + 4, a1), wasm_v128_store(o1 + c + 8, a2), wasm_v128_store(o1 + c + 12, a3);
  }
  /* The last columns one at a time: a vector load could run past the row (and past the tensor). */
  for (; c < width; c++) {
    float a = o1[c], bsum = p2 ? o2[c] : 0.0f;
    for (int j = 0; j < count; j++) {
      const float v = values[(uint32_t)j * stride + c];
      a += p1[j] * v;
      if (p2) bsum += p2[j] * v;
    }
    o1[c] = a;
    if (p2) o2[c] = bsum;
  }
}

/*
 * With at most MR query rows a tile would be mostly padding, and packing K and V would cost as much
 * as the attention itself. So each task takes one (query, head) and reads K and V in place: scores
 * as dot products four keys at a time, values accumulated row by row.
 */
static void decode_task(const Job* job, int task, int thread) {
  const AttentionArgs* at = JOB_ARGS(const AttentionArgs, job);
  const int dk = at->dk, dv = at->dv, dvp = at->dvp, maps = at->maps;
  const int h = task % at->heads, t = (task / at->heads) % at->tokens, b = task / (at->heads * at->tokens);
  const int g = h * at->kv_heads / at->heads;
  const int dkp = round_up(dk, 4);
  float* q = at->scratch + (uint32_t)thread * at->thread_floats; /* [maps][dkp] */
  float* p = q + maps * dkp;                                     /* [maps][BK] */
  float* o = p + maps * BK;                                      /* [maps][dvp] */
  float max[2] = {-__builtin_inff(), -__builtin_inff()}, sum[2] = {0.0f, 0.0f};
  for (int m = 0; m < maps; m++) {
    const float* row = at->q + ((uint32_t)(b * at->tokens + t) * at->q_heads + (maps == 2 ? 2 * h + m : h)) * dk;
    for (int i = 0; i < dk; i++) q[m * dkp + i] = row[i] * at->scale;
  }
  __builtin_memset(o, 0, sizeof(float) * maps * dvp);

  const int key_stride = at->k_heads * dk, value_stride = at->kv_heads * dv, end = visible_keys(at, t);
  for (int s0 = 0; s0 < end; s0 += BK) {
    const int count = min_int(BK, end - s0);
    for (int m = 0; m < maps; m++) {
      const int kh = at->shared_keys || maps == 1 ? g : 2 * g + m;
      const float* k = at->k + ((uint32_t)(b * at->capacity + s0) * at->k_heads + kh) * dk;
      const float* qm = q + m * dkp;
      float* pm = p + m * BK;
      int j = 0;
      for (; j + 4 <= count; j += 4)
        wasm_v128_store(pm + j, dot4(qm, k + j * key_stride, k + (j + 1) * key_stride, k + (j + 2) * key_stride, k + (j + 3) * key_stride, dk));
      for (; j < count; j++) {
        const float* key = k + j * key_stride;
        pm[j] = wasm_f32x4_extract_lane(dot4(qm, key, key, key, key, dk), 0);
      }
      /* Lanes past the block score −inf: their probability is exactly 0. */
      for (; j < round_up(count, 4); j++) pm[j] = -__builtin_inff();
      v128_t block = wasm_f32x4_splat(-__builtin_inff());
      for (j = 0; j < count; j += 4) block = wasm_f32x4_pmax(block, wasm_v128_load(pm + j));
      const float block_max = horizontal_max(block);
      const float new_max = block_max > max[m] ? block_max : max[m];
      const float factor = wasm_f32x4_extract_lane(exp_nonpositive(wasm_f32x4_splat(max[m] - new_max)), 0);
      const v128_t shift = wasm_f32x4_splat(new_max);
      v128_t total = wasm_f32x4_splat(0.0f);
      for (j = 0; j < count; j += 4) {
        const v128_t x = exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(pm + j), shift));
        wasm_v128_store(pm + j, x);
        total = wasm_f32x4_add(total, x);
      }
      sum[m] = sum[m] * factor + horizontal_sum(total);
      max[m] = new_max;
      if (s0 > 0 && factor != 1.0f) scale_row(o + m * dvp, dvp, factor);
    }
    const float* values = at->v + ((uint32_t)(b * at->capacity + s0) * at->kv_heads + g) * dv;
    accumulate_values(values, value_stride, count, dv, p, maps == 2 ? p + BK : 0, o, o + dvp);
  }
  finish_row(at, b, h, t, o, o + dvp, sum[0], sum[1], max[0], max[1]);
}

static int begin_attention(Job* job) {
  const AttentionArgs* at = JOB_ARGS(const AttentionArgs, job);
  return job_begin(job, attention_task, at->query_tiles * at->batch * at->heads, 0);
}

/* ---- entry ---------------------------------------------------------------------------------------- */

/*
 * Sets the shape of the next attention call and returns the scratch bytes it needs (the packed
 * keys and values, and `threads` per-thread areas); saturates at 4 GiB − 1.
 * maps = 2 is differential attention (q has 2·heads half-heads), 1 standard attention; statistics:
 * whether the call saves its log-sum-exp (and map outputs).
 */
uint32_t attention_configure(Job* job, int batch, int tokens, int heads, int kv_heads, int k_heads, int dk, int dv,
                             int capacity, int maps, int lambda_per_token, int causal, int key_offset, int key_length,
                             float scale, int norm, float eps, float output_scale, int statistics, int threads) {
  AttentionArgs* at = JOB_ARGS(AttentionArgs, job);
  at->batch = batch, at->tokens = tokens, at->heads = heads, at->kv_heads = kv_heads, at->k_heads = k_heads;
  at->dk = dk, at->dv = dv, at->capacity = capacity, at->maps = maps;
  at->q_heads = maps * heads;
  at->shared_keys = maps == 2 && k_heads == kv_heads;
  at->lambda_per_token = lambda_per_token, at->causal = causal, at->key_offset = key_offset, at->key_length = key_length;
  at->scale = scale, at->norm = norm, at->eps = eps, at->output_scale = output_scale;
  at->tile_rows = min_int(TQ, round_up(tokens, NR));
  at->query_tiles = (tokens + at->tile_rows - 1) / at->tile_rows;
  at->key_blocks = (key_length + BK - 1) / BK;
  at->dvp = round_up(dv, NR);
  at->decode = tokens <= MR && !statistics;
  uint64_t floats;
  if (at->decode) {
    at->transpose_tasks = 0;
    at->thread_floats = (uint32_t)round_up(maps * (round_up(dk, 4) + BK + at->dvp), 16);
    floats = (uint64_t)threads * at->thread_floats;
  } else {
    at->transpose_tasks = batch * k_heads * at->key_blocks;
    const uint64_t tq = at->tile_rows;
    at->thread_floats = (uint32_t)round_up(maps * dk * tq + BK * tq + maps * tq * at->dvp + 2 * maps * tq + tq, 16);
    floats = (uint64_t)at->transpose_tasks * dk * BK + (uint64_t)batch * kv_heads * at->key_blocks * BK * at->dvp +
             (uint64_t)threads * at->thread_floats;
  }
  const uint64_t bytes = floats * 4;
  return bytes > 0xffffffffu ? 0xffffffffu : (uint32_t)bytes;
}

/*
 * Prepares the configured call (log_sum_exp and map_outputs null without statistics, map_outputs null
 * for standard attention); returns the first phase's task count.
 */
int attention_prepare(Job* job, const float* q, const float* k, const float* v, const float* lambda,
                      const float* norm_weight, float* out, float* log_sum_exp, float* map_outputs, float* scratch) {
  AttentionArgs* at = JOB_ARGS(AttentionArgs, job);
  at->q = q, at->k = k, at->v = v, at->lambda = lambda, at->norm_weight = norm_weight, at->out = out;
  at->log_sum_exp = log_sum_exp, at->map_outputs = map_outputs;
  if (at->decode) {
    at->scratch = scratch;
    return job_begin(job, decode_task, at->batch * at->tokens * at->heads, 0);
  }
  at->keys_t = scratch;
  at->values_p = at->keys_t + (uint32_t)at->transpose_tasks * at->dk * BK;
  at->scratch = at->values_p + (uint32_t)at->batch * at->kv_heads * at->key_blocks * BK * at->dvp;
  const int pack_tasks = at->batch * at->kv_heads * at->key_blocks;
  return job_begin(job, transpose_task, at->transpose_tasks + pack_tasks, begin_attention);
}
