/*
 * What every kernel file shares: the SIMD128 types, the multiply-add that becomes one fused
 * instruction where the engine has relaxed SIMD, and a vector exp. (The entry points' prototypes and
 * WebAssembly exports are ./entry-points.generated.h's, from the list in ../src/c-kernels/entry-points.ts.)
 *
 * The same sources build two binaries (see ../scripts/build-wasm.mjs): plain SIMD128, and relaxed
 * SIMD (-mrelaxed-simd), which the loader picks when the engine validates it. They also build
 * natively (../scripts/build-native.mjs), where ../native/compat/wasm_simd128.h maps the intrinsics
 * onto the compiler's vector extensions.
 */
#pragma once
#include <stdint.h>
#include <wasm_simd128.h>

#define INLINE static inline __attribute__((always_inline))

typedef float f32x4_native __attribute__((vector_size(16)));

/* a·b + c. relaxed_madd may round once (fused) or twice; both are within float32 tolerance. */
INLINE v128_t madd(v128_t a, v128_t b, v128_t c) {
#ifdef __wasm_relaxed_simd__
  return (v128_t)__builtin_wasm_relaxed_madd_f32x4((f32x4_native)a, (f32x4_native)b, (f32x4_native)c);
#elif !defined(__wasm__)
  return wasm_compat_madd(a, b, c);
#else
  return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}

/*
 * Hides a pointer from clang's loop strength reduction, which would turn the constant offsets of a
 * micro-kernel's loads into i32.add instructions that V8 cannot fold into x64 addressing modes (a
 * 32-bit add wraps around); with it every load keeps its offset immediate. Worth 3% on matmul.
 */
#define OPAQUE(pointer) __asm__("" : "+r"(pointer))

INLINE int min_int(int a, int b) { return a < b ? a : b; }
INLINE int max_int(int a, int b) { return a > b ? a : b; }
INLINE int round_up(int x, int multiple) { return (x + multiple - 1) / multiple * multiple; }

/*
 * 2^x for x ≤ 0, four lanes: x = n + f with n = round(x) and f in [−½, ½]; 2^f = 1 + f·q(f) with
 * q a degree-5 polynomial fitted for relative error (1.1e-7 in float32, about one rounding), and
 * 2^n put straight into the exponent bits. Below −126.5 (−inf included) the result is exactly 0:
 * x is clamped to −127, whose exponent field is zero.
 */
#define EXP2_Q5 1.5408147010020912e-4f
#define EXP2_Q4 1.3406268553808331e-3f
#define EXP2_Q3 9.618311189115047e-3f
#define EXP2_Q2 5.5503107607364655e-2f
#define EXP2_Q1 2.4022647738456726e-1f
#define EXP2_Q0 6.931472420692444e-1f
#define LOG2_E 1.44269504088896341f
/* 1 + f·q(f) by Horner's rule, with the vector type's multiply-add and splat (./wide.h uses it too). */
#define EXP2_POLYNOMIAL(f, MADD, SPLAT)                                                                         \
  MADD(MADD(MADD(MADD(MADD(MADD(SPLAT(EXP2_Q5), f, SPLAT(EXP2_Q4)), f, SPLAT(EXP2_Q3)), f, SPLAT(EXP2_Q2)), f, \
                      SPLAT(EXP2_Q1)),                                                                          \
                 f, SPLAT(EXP2_Q0)),                                                                            \
       f, SPLAT(1.0f))
INLINE v128_t exp2_nonpositive(v128_t x) {
  x = wasm_f32x4_pmax(x, wasm_f32x4_splat(-127.0f));
  const v128_t n = wasm_f32x4_nearest(x);
  const v128_t f = wasm_f32x4_sub(x, n);
  const v128_t p = EXP2_POLYNOMIAL(f, madd, wasm_f32x4_splat);
  const v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(p, scale);
}

/*
 * e^x for x ≤ 0, as 2^(x·log₂e): relative error about 1e-7 plus 6e-8·|x| from rounding x·log₂e;
 * −inf gives exactly 0.
 */
INLINE v128_t exp_nonpositive(v128_t x) { return exp2_nonpositive(wasm_f32x4_mul(x, wasm_f32x4_splat(LOG2_E))); }

/*
 * The rows the attention kernels read are strided (one head's slice of every token), and by the
 * backward they have long left the caches: asking for a row PREFETCH_AHEAD rows early overlaps the
 * misses, which the hardware's stride prefetchers do not do for rows this short. Native builds
 * only: WebAssembly has no prefetch instruction.
 */
#define PREFETCH_AHEAD 6
INLINE void prefetch_row(const float* row, int width, int valid) {
#ifdef __wasm__
  (void)row, (void)width, (void)valid;
#else
  if (!valid) return;
  for (int p = 0; p < width; p += 16) __builtin_prefetch(row + p);
  __builtin_prefetch(row + width - 1);
#endif
}

/*
 * dst[c·dst_stride + r] = src[r·src_stride + c] for r < rows, c < cols: 4×4 blocks transposed in
 * registers (four loads, eight shuffles, four stores), the edges element by element.
 */
INLINE void transpose_block(const float* src, int src_stride, int rows, int cols, float* dst, int dst_stride) {
  int r = 0;
  for (; r + 4 <= rows; r += 4) {
    for (int i = r + PREFETCH_AHEAD; i < r + PREFETCH_AHEAD + 4; i++)
      prefetch_row(src + (uint32_t)i * src_stride, cols, i < rows);
    const float* s = src + (uint32_t)r * src_stride;
    int c = 0;
    for (; c + 4 <= cols; c += 4) {
      const v128_t x0 = wasm_v128_load(s + c), x1 = wasm_v128_load(s + src_stride + c);
      const v128_t x2 = wasm_v128_load(s + 2 * src_stride + c), x3 = wasm_v128_load(s + 3 * src_stride + c);
      const v128_t t0 = wasm_i32x4_shuffle(x0, x1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(x0, x1, 2, 6, 3, 7);
      const v128_t t2 = wasm_i32x4_shuffle(x2, x3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(x2, x3, 2, 6, 3, 7);
      float* d = dst + (uint32_t)c * dst_stride + r;
      wasm_v128_store(d, wasm_i64x2_shuffle(t0, t2, 0, 2));
      wasm_v128_store(d + dst_stride, wasm_i64x2_shuffle(t0, t2, 1, 3));
      wasm_v128_store(d + 2 * dst_stride, wasm_i64x2_shuffle(t1, t3, 0, 2));
      wasm_v128_store(d + 3 * dst_stride, wasm_i64x2_shuffle(t1, t3, 1, 3));
    }
    for (; c < cols; c++)
      for (int i = r; i < r + 4; i++) dst[(uint32_t)c * dst_stride + i] = src[(uint32_t)i * src_stride + c];
  }
  for (; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(uint32_t)c * dst_stride + r] = src[(uint32_t)r * src_stride + c];
}

/* Σ of the four lanes. */
INLINE float horizontal_sum(v128_t v) {
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}

/* The largest of the four lanes. */
INLINE float horizontal_max(v128_t v) {
  v = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}

/* Σ_p x[p]·y[p] for four rows y0..y3 at once. */
INLINE v128_t dot4(const float* x, const float* y0, const float* y1, const float* y2, const float* y3, int k) {
  v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
  int p = 0;
  for (; p + 4 <= k; p += 4) {
    const v128_t v = wasm_v128_load(x + p);
    s0 = madd(v, wasm_v128_load(y0 + p), s0);
    s1 = madd(v, wasm_v128_load(y1 + p), s1);
    s2 = madd(v, wasm_v128_load(y2 + p), s2);
    s3 = madd(v, wasm_v128_load(y3 + p), s3);
  }
  /* Transpose-and-add: lane r of the result is the horizontal sum of s_r. */
  const v128_t t0 = wasm_f32x4_add(wasm_i32x4_shuffle(s0, s1, 0, 4, 1, 5), wasm_i32x4_shuffle(s0, s1, 2, 6, 3, 7));
  const v128_t t1 = wasm_f32x4_add(wasm_i32x4_shuffle(s2, s3, 0, 4, 1, 5), wasm_i32x4_shuffle(s2, s3, 2, 6, 3, 7));
  v128_t sums = wasm_f32x4_add(wasm_i64x2_shuffle(t0, t1, 0, 2), wasm_i64x2_shuffle(t0, t1, 1, 3));
  if (p < k) {
    float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (; p < k; p++) {
      tail[0] += x[p] * y0[p];
      tail[1] += x[p] * y1[p];
      tail[2] += x[p] * y2[p];
      tail[3] += x[p] * y3[p];
    }
    sums = wasm_f32x4_add(sums, wasm_v128_load(tail));
  }
  return sums;
}

/*
 * ln x for x ≥ 1 in double precision: x = 2^e·f with f in [√½, √2), ln f = 2·atanh((f − 1)/(f + 1))
 * as its odd series (|z| ≤ 0.172, eleven terms reach double rounding). Called once per row.
 */
INLINE double log_f64(double x) {
  union {
    double d;
    uint64_t u;
  } bits = {x};
  int e = (int)((bits.u >> 52) & 0x7ff) - 1023;
  bits.u = (bits.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double f = bits.d;
  if (f > 1.4142135623730951) f *= 0.5, e++;
  const double z = (f - 1.0) / (f + 1.0), z2 = z * z;
  double series = 1.0 / 23.0;
  for (int k = 21; k >= 1; k -= 2) series = series * z2 + 1.0 / k;
  return e * 0.6931471805599453 + 2.0 * z * series;
}

/* A softmax row's ln Σ e^s from its running maximum m and sum l = Σ e^(s − m) ≥ 1, rounded once. */
INLINE float log_sum_exp(float max, float sum) { return (float)((double)max + log_f64((double)sum)); }
