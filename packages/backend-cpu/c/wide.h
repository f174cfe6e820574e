/*
 * Native builds with 256- or 512-bit vectors and fused multiply-add (AVX2+FMA, AVX-512): WIDE_LANES
 * float lanes per vector, for the loops that the four-lane SIMD128 code of ./simd.h would leave at a
 * quarter (or half) of the machine's width. Each wide function does its four-lane twin's operations
 * in the same order, rounded or fused as there, so every lane gets that twin's result bit for bit,
 * and loops may finish their tails four lanes at a time. WebAssembly and 128-bit builds leave
 * WIDE_LANES undefined and use only the four-lane code.
 */
#pragma once
#include "simd.h"

#if !defined(__wasm__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#include <immintrin.h>
#ifdef __AVX512F__
#define WIDE_LANES 16
typedef __m512 wide_vector;
#define WIDE_LOAD(p) _mm512_loadu_ps(p)
#define WIDE_STORE(p, v) _mm512_storeu_ps(p, v)
#define WIDE_SPLAT(x) _mm512_set1_ps(x)
#define WIDE_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define WIDE_NEAREST(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#else
#define WIDE_LANES 8
typedef __m256 wide_vector;
#define WIDE_LOAD(p) _mm256_loadu_ps(p)
#define WIDE_STORE(p, v) _mm256_storeu_ps(p, v)
#define WIDE_SPLAT(x) _mm256_set1_ps(x)
#define WIDE_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define WIDE_NEAREST(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#endif
/* One wide vector's lanes as int32 (masks, exponent bits), with GCC's vector operators. */
typedef int32_t wide_int __attribute__((vector_size(WIDE_LANES * 4)));
typedef int32_t wide_int_unaligned __attribute__((vector_size(WIDE_LANES * 4), aligned(4)));
/* 0, 1, …, WIDE_LANES − 1: lane numbers, for masks. */
static const int32_t WIDE_LANE_INDEX[WIDE_LANES] __attribute__((aligned(64))) = {0, 1, 2, 3, 4, 5, 6, 7,
#if WIDE_LANES == 16
                                                                                 8, 9, 10, 11, 12, 13, 14, 15
#endif
};

/* Lanes where `mask` is set keep x; the others become +0. */
INLINE wide_vector wide_select(wide_vector x, wide_int mask) { return (wide_vector)((wide_int)x & mask); }

/* mask ? a : b, lane by lane (wasm_v128_bitselect). */
INLINE wide_vector wide_bitselect(wide_vector a, wide_vector b, wide_int mask) {
  return (wide_vector)(((wide_int)a & mask) | ((wide_int)b & ~mask));
}

/* exp_nonpositive (./simd.h), lane for lane. */
INLINE wide_vector wide_exp_nonpositive(wide_vector x) {
  x = x * WIDE_SPLAT(LOG2_E);
  /* pmax(x, −127) = x < −127 ? −127 : x */
  const wide_vector low = WIDE_SPLAT(-127.0f);
  x = wide_bitselect(low, x, (wide_int)(x < low));
  const wide_vector n = WIDE_NEAREST(x);
  const wide_vector f = x - n;
  const wide_vector p = EXP2_POLYNOMIAL(f, WIDE_FMA, WIDE_SPLAT);
  /* n is in [−127, 0]: truncation is exact, as trunc_sat's is there. */
  const wide_int scale = (__builtin_convertvector(n, wide_int) + 127) << 23;
  return p * (wide_vector)scale;
}
#endif
