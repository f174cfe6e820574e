/*
 * The WebAssembly SIMD128 intrinsics the kernels use (in ../../c), for a native build: the same
 * 128-bit operations as GCC/clang vector extensions, which the compiler lowers to SSE/AVX on x86-64
 * and NEON on arm64. The native build puts this directory first on the include path, so the kernel
 * sources compile unchanged for both targets and the WebAssembly binaries stay what they were.
 *
 * Semantics follow the WebAssembly SIMD specification for every lane value the kernels can produce
 * (pmin/pmax, nearest-even rounding, saturating truncation), not the x86 instructions' own.
 */
#pragma once
#include <stdint.h>
#include <string.h>
#if defined(__FMA__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

typedef int32_t v128_t __attribute__((vector_size(16), aligned(16)));
typedef float wasm_compat_f32x4 __attribute__((vector_size(16), aligned(16)));
typedef double wasm_compat_f64x2 __attribute__((vector_size(16), aligned(16)));
typedef int64_t wasm_compat_i64x2 __attribute__((vector_size(16), aligned(16)));
typedef uint32_t wasm_compat_u32x4 __attribute__((vector_size(16), aligned(16)));

#define WASM_COMPAT static inline __attribute__((always_inline))
#define F32(v) ((wasm_compat_f32x4)(v))
#define F64(v) ((wasm_compat_f64x2)(v))

WASM_COMPAT v128_t wasm_v128_load(const void* p) {
  v128_t v;
  memcpy(&v, p, 16);
  return v;
}
WASM_COMPAT void wasm_v128_store(void* p, v128_t v) { memcpy(p, &v, 16); }
WASM_COMPAT v128_t wasm_v128_load32_splat(const void* p) {
  int32_t x;
  memcpy(&x, p, 4);
  return (v128_t){x, x, x, x};
}
WASM_COMPAT v128_t wasm_v128_load64_zero(const void* p) {
  int32_t x[2];
  memcpy(x, p, 8);
  return (v128_t){x[0], x[1], 0, 0};
}
WASM_COMPAT v128_t wasm_f32x4_splat(float x) { return (v128_t)(wasm_compat_f32x4){x, x, x, x}; }
WASM_COMPAT v128_t wasm_i32x4_splat(int32_t x) { return (v128_t){x, x, x, x}; }
WASM_COMPAT v128_t wasm_f64x2_splat(double x) { return (v128_t)(wasm_compat_f64x2){x, x}; }
WASM_COMPAT v128_t wasm_f32x4_make(float a, float b, float c, float d) { return (v128_t)(wasm_compat_f32x4){a, b, c, d}; }
WASM_COMPAT v128_t wasm_i32x4_make(int32_t a, int32_t b, int32_t c, int32_t d) { return (v128_t){a, b, c, d}; }

WASM_COMPAT v128_t wasm_f32x4_add(v128_t a, v128_t b) { return (v128_t)(F32(a) + F32(b)); }
WASM_COMPAT v128_t wasm_f32x4_sub(v128_t a, v128_t b) { return (v128_t)(F32(a) - F32(b)); }
WASM_COMPAT v128_t wasm_f32x4_mul(v128_t a, v128_t b) { return (v128_t)(F32(a) * F32(b)); }
WASM_COMPAT v128_t wasm_f32x4_div(v128_t a, v128_t b) { return (v128_t)(F32(a) / F32(b)); }
WASM_COMPAT v128_t wasm_f32x4_neg(v128_t a) { return (v128_t)(-F32(a)); }
WASM_COMPAT v128_t wasm_f32x4_abs(v128_t a) { return a & wasm_i32x4_splat(0x7fffffff); }
WASM_COMPAT v128_t wasm_f32x4_sqrt(v128_t a) {
  wasm_compat_f32x4 x = F32(a);
  for (int i = 0; i < 4; i++) x[i] = __builtin_sqrtf(x[i]);
  return (v128_t)x;
}
/* pmax(a, b) = a < b ? b : a, lane by lane (the specification's pseudo-maximum). */
WASM_COMPAT v128_t wasm_f32x4_pmax(v128_t a, v128_t b) {
  const v128_t less = (v128_t)(F32(a) < F32(b));
  return (b & less) | (a & ~less);
}
WASM_COMPAT v128_t wasm_f32x4_nearest(v128_t a) {
  wasm_compat_f32x4 x = F32(a);
  /* rint rounds to nearest, ties to even, in the default rounding mode, which the kernels never change. */
  for (int i = 0; i < 4; i++) x[i] = __builtin_rintf(x[i]);
  return (v128_t)x;
}
WASM_COMPAT v128_t wasm_f32x4_ge(v128_t a, v128_t b) { return (v128_t)(F32(a) >= F32(b)); }
WASM_COMPAT v128_t wasm_i32x4_lt(v128_t a, v128_t b) { return (v128_t)(a < b); }
WASM_COMPAT v128_t wasm_i32x4_gt(v128_t a, v128_t b) { return (v128_t)(a > b); }
WASM_COMPAT v128_t wasm_i32x4_add(v128_t a, v128_t b) { return a + b; }
WASM_COMPAT v128_t wasm_i32x4_shl(v128_t a, uint32_t n) { return a << (int32_t)(n & 31); }
WASM_COMPAT v128_t wasm_v128_and(v128_t a, v128_t b) { return a & b; }
WASM_COMPAT v128_t wasm_v128_bitselect(v128_t a, v128_t b, v128_t mask) { return (a & mask) | (b & ~mask); }
/* Truncation toward zero, saturating at the int32 range, NaN to 0. */
WASM_COMPAT v128_t wasm_i32x4_trunc_sat_f32x4(v128_t a) {
  wasm_compat_f32x4 x = F32(a);
  const v128_t nan = (v128_t)(x != x);
  x = (wasm_compat_f32x4)wasm_f32x4_pmax((v128_t)x, wasm_f32x4_splat(-2147483648.0f));
  const v128_t high = (v128_t)(x >= 2147483648.0f);
  x = (wasm_compat_f32x4)((v128_t)x & ~(high | nan));
  const v128_t t = __builtin_convertvector(x, v128_t);
  return (t & ~high) | (wasm_i32x4_splat(INT32_MAX) & high);
}
WASM_COMPAT v128_t wasm_f64x2_add(v128_t a, v128_t b) { return (v128_t)(F64(a) + F64(b)); }
WASM_COMPAT v128_t wasm_f64x2_sub(v128_t a, v128_t b) { return (v128_t)(F64(a) - F64(b)); }
WASM_COMPAT v128_t wasm_f64x2_mul(v128_t a, v128_t b) { return (v128_t)(F64(a) * F64(b)); }
WASM_COMPAT v128_t wasm_f64x2_promote_low_f32x4(v128_t a) {
  const wasm_compat_f32x4 x = F32(a);
  return (v128_t)(wasm_compat_f64x2){(double)x[0], (double)x[1]};
}
WASM_COMPAT v128_t wasm_f32x4_demote_f64x2_zero(v128_t a) {
  const wasm_compat_f64x2 x = F64(a);
  return (v128_t)(wasm_compat_f32x4){(float)x[0], (float)x[1], 0.0f, 0.0f};
}

#define wasm_f32x4_extract_lane(v, i) (F32(v)[(i)])
#define wasm_f64x2_extract_lane(v, i) (F64(v)[(i)])
#define wasm_i32x4_shuffle(a, b, c0, c1, c2, c3) \
  ((v128_t)__builtin_shufflevector((v128_t)(a), (v128_t)(b), c0, c1, c2, c3))
#define wasm_i64x2_shuffle(a, b, c0, c1) \
  ((v128_t)__builtin_shufflevector((wasm_compat_i64x2)(a), (wasm_compat_i64x2)(b), c0, c1))

/* a·b + c, fused where the target has a fused multiply-add (as relaxed SIMD's madd is in V8). */
WASM_COMPAT v128_t wasm_compat_madd(v128_t a, v128_t b, v128_t c) {
#if defined(__FMA__)
  return (v128_t)_mm_fmadd_ps((__m128)a, (__m128)b, (__m128)c);
#elif defined(__aarch64__)
  return (v128_t)vfmaq_f32((float32x4_t)c, (float32x4_t)a, (float32x4_t)b);
#else
  return (v128_t)(F32(a) * F32(b) + F32(c));
#endif
}
