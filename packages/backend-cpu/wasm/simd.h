/*
 * What every kernel file shares: the SIMD128 types, the multiply-add that becomes one fused
 * instruction where the engine has relaxed SIMD, a vector exp, and the export attribute.
 *
 * The same sources build two binaries (see ../scripts/build-wasm.mjs): plain SIMD128, and relaxed
 * SIMD (-mrelaxed-simd), which the loader picks when the engine validates it.
 */
#pragma once
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

typedef float f32x4_native __attribute__((vector_size(16)));

/* a·b + c. relaxed_madd may round once (fused) or twice; both are within float32 tolerance. */
INLINE v128_t madd(v128_t a, v128_t b, v128_t c) {
#ifdef __wasm_relaxed_simd__
  return (v128_t)__builtin_wasm_relaxed_madd_f32x4((f32x4_native)a, (f32x4_native)b, (f32x4_native)c);
#else
  return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}

/*
 * Hides a pointer from clang's loop strength reduction. Without it clang rewrites the constant
 * offsets of a micro-kernel's loads into separate i32.add instructions, which V8 cannot fold into
 * x64 addressing modes; with it every load keeps its offset immediate (about 1.7× faster).
 */
#define OPAQUE(pointer) __asm__("" : "+r"(pointer))

INLINE int min_int(int a, int b) { return a < b ? a : b; }
INLINE int max_int(int a, int b) { return a > b ? a : b; }
INLINE int round_up(int x, int multiple) { return (x + multiple - 1) / multiple * multiple; }

/*
 * e^x for x ≤ 0, four lanes (Cephes expf: x = n·ln2 + r, a degree-6 polynomial in r, 2^n from the
 * exponent bits). Relative error about 2e-7. Lanes below −87.3 (and −inf) give exactly 0, which
 * is how masked attention scores drop out.
 */
INLINE v128_t exp_nonpositive(v128_t x) {
  const v128_t underflow = wasm_f32x4_lt(x, wasm_f32x4_splat(-87.33654f));
  x = wasm_f32x4_pmax(x, wasm_f32x4_splat(-87.33654f));
  const v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = madd(n, wasm_f32x4_splat(-0.693359375f), x);
  r = madd(n, wasm_f32x4_splat(2.12194440e-4f), r);
  v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
  p = madd(p, r, wasm_f32x4_splat(1.3981999507e-3f));
  p = madd(p, r, wasm_f32x4_splat(8.3334519073e-3f));
  p = madd(p, r, wasm_f32x4_splat(4.1665795894e-2f));
  p = madd(p, r, wasm_f32x4_splat(1.6666665459e-1f));
  p = madd(p, r, wasm_f32x4_splat(5.0000001201e-1f));
  p = madd(p, wasm_f32x4_mul(r, r), wasm_f32x4_add(r, wasm_f32x4_splat(1.0f)));
  /* n ≥ −126 here, so 2^n is a normal float: its bits are (n + 127) << 23. */
  const v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(p, scale), underflow);
}

/* Σ of the four lanes. */
INLINE float horizontal_sum(v128_t v) {
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}
