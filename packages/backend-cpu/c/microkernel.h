/*
 * The register-blocked core of matmul and of both attention kernels:
 *
 *   C[i][0..8) (+)= Σ_{p<k} A(i, p) · B(p, 0..8)   for i in [0, 4)
 *
 * with A(i, p) = a[p·lda + i] (A stored k-major: four rows side by side per step) and
 * B(p, j) = b[p·ldb + j] (eight contiguous columns per step). Eight accumulators, two B vectors,
 * one broadcast A value and a product fit the 15 SIMD registers V8 allocates on x64; each step is
 * 6 loads and 8 multiply-adds. Measured alone on this shape family (Zen 4, V8 11.3), 4×8 beats
 * 5×8 and 6×8, which spill, and ties 2×16 and 3×12: about 44 GFLOP/s per core with SIMD128 and
 * 54 with relaxed SIMD's fused multiply-add.
 */
#pragma once
#include "simd.h"
#include "wide.h"

#define MR 4
#define NR 8

INLINE void microkernel(int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc, int accumulate) {
  v128_t c00, c01, c10, c11, c20, c21, c30, c31;
  if (accumulate) {
    c00 = wasm_v128_load(c), c01 = wasm_v128_load(c + 4);
    c10 = wasm_v128_load(c + ldc), c11 = wasm_v128_load(c + ldc + 4);
    c20 = wasm_v128_load(c + 2 * ldc), c21 = wasm_v128_load(c + 2 * ldc + 4);
    c30 = wasm_v128_load(c + 3 * ldc), c31 = wasm_v128_load(c + 3 * ldc + 4);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = wasm_f32x4_splat(0.0f);
  }
  for (int p = 0; p < k; p++) {
    OPAQUE(a);
    OPAQUE(b);
    const v128_t b0 = wasm_v128_load(b);
    const v128_t b1 = wasm_v128_load(b + 4);
    v128_t x = wasm_v128_load32_splat(a);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = wasm_v128_load32_splat(a + 1);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = wasm_v128_load32_splat(a + 2);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = wasm_v128_load32_splat(a + 3);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
    a += lda;
    b += ldb;
  }
  wasm_v128_store(c, c00), wasm_v128_store(c + 4, c01);
  wasm_v128_store(c + ldc, c10), wasm_v128_store(c + ldc + 4, c11);
  wasm_v128_store(c + 2 * ldc, c20), wasm_v128_store(c + 2 * ldc + 4, c21);
  wasm_v128_store(c + 3 * ldc, c30), wasm_v128_store(c + 3 * ldc + 4, c31);
}

#ifdef WIDE_LANES
/*
 * Native builds with 256- or 512-bit fused multiply-add: MR rows × SPAN columns per call, two wide
 * vectors per row (eight accumulators, enough to keep both FMA pipes busy where 4×8 keeps them half
 * busy). Every element is still summed one multiply-add at a time from p = 0, fused as madd is, so
 * the results are the 4×8 kernel's bit for bit (the attention backward relies on that order).
 */
#define SPAN (2 * WIDE_LANES)

INLINE void microkernel_wide(int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc,
                             int accumulate) {
  wide_vector c0[MR], c1[MR];
  for (int i = 0; i < MR; i++) {
    c0[i] = accumulate ? WIDE_LOAD(c + i * ldc) : WIDE_SPLAT(0.0f);
    c1[i] = accumulate ? WIDE_LOAD(c + i * ldc + WIDE_LANES) : WIDE_SPLAT(0.0f);
  }
  for (int p = 0; p < k; p++) {
    const wide_vector b0 = WIDE_LOAD(b), b1 = WIDE_LOAD(b + WIDE_LANES);
    for (int i = 0; i < MR; i++) {
      const wide_vector x = WIDE_SPLAT(a[i]);
      c0[i] = WIDE_FMA(x, b0, c0[i]);
      c1[i] = WIDE_FMA(x, b1, c1[i]);
    }
    a += lda;
    b += ldb;
  }
  for (int i = 0; i < MR; i++) {
    WIDE_STORE(c + i * ldc, c0[i]);
    WIDE_STORE(c + i * ldc + WIDE_LANES, c1[i]);
  }
}
#endif

/*
 * MR rows of C over `width` columns (a multiple of NR is computed: the operands are padded), panel
 * after panel of NR columns; natively with 256/512-bit FMA, SPAN columns at a time where they fit.
 */
INLINE void microkernel_span(int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc, int width,
                             int accumulate) {
  int j = 0;
#ifdef SPAN
  for (; j + SPAN <= width; j += SPAN) microkernel_wide(k, a, lda, b + j, ldb, c + j, ldc, accumulate);
#endif
  for (; j < width; j += NR) microkernel(k, a, lda, b + j, ldb, c + j, ldc, accumulate);
}

/*
 * The same for a tile cut by the matrix edge (rows < MR or cols < NR): computed in full on a
 * scratch tile (the packed operands are zero-padded, so the extra lanes are harmless), and only
 * the valid part of C is read and written.
 */
INLINE void microkernel_edge(int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc, int rows, int cols,
                             int accumulate) {
  float tile[MR * NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) tile[i * NR + j] = accumulate && i < rows && j < cols ? c[i * ldc + j] : 0.0f;
  microkernel(k, a, lda, b, ldb, tile, NR, accumulate);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) c[i * ldc + j] = tile[i * NR + j];
}
