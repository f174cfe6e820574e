/*
 * The elementwise kernels of a decoder block, split into chunks that any thread may take, four lanes
 * at a time (swiglu's backward natively WIDE_LANES at a time, lane for lane the same operations):
 *   add      y = a + b                       (the residual connection)
 *   swiglu   y = silu(gate) · up = gate · σ(gate) · up   (SwiGLU feed-forward)
 *   sigmoid  y = σ(x)                        (DIFF Transformer V2's per-token λ)
 * σ is computed from z = e^(−|x|), which never overflows: σ(x) = 1/(1 + z) for x ≥ 0 and
 * z/(1 + z) for x < 0, so σ saturates to exactly 0 or 1 and silu of a very negative gate is −0.
 *
 * swiglu's backward, with s = σ(gate): dGate = dy·up·(s + gate·s·(1 − s)), dUp = dy·gate·s; the
 * first written so, not s·(1 + gate·(1 − s)), because that is 0·∞ where σ saturates.
 */
#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"
#include "wide.h"

#define CHUNK 16384 /* elements per task */

enum { ADD = 0, SWIGLU = 1, SIGMOID = 2 };

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  int kind;
  const float* a;
  const float* b;
  float* y;
  int length;
} ElementwiseArgs;
JOB_ARGS_FIT(ElementwiseArgs);

INLINE v128_t sigmoid4(v128_t x) {
  const v128_t z = exp_nonpositive(wasm_f32x4_neg(wasm_f32x4_abs(x)));
  const v128_t r = wasm_f32x4_div(wasm_f32x4_splat(1.0f), wasm_f32x4_add(wasm_f32x4_splat(1.0f), z));
  return wasm_v128_bitselect(r, wasm_f32x4_mul(z, r), wasm_f32x4_ge(x, wasm_f32x4_splat(0.0f)));
}

INLINE v128_t apply(int kind, v128_t a, v128_t b) {
  switch (kind) {
    case ADD:
      return wasm_f32x4_add(a, b);
    case SWIGLU:
      return wasm_f32x4_mul(wasm_f32x4_mul(a, sigmoid4(a)), b);
    default:
      return sigmoid4(a);
  }
}

static void elementwise_task(const Job* job, int task, int thread) {
  (void)thread;
  const ElementwiseArgs* ew = JOB_ARGS(const ElementwiseArgs, job);
  const int start = task * CHUNK, end = min_int(ew->length, start + CHUNK);
  const int kind = ew->kind;
  const float* a = ew->a;
  const float* b = kind == SIGMOID ? ew->a : ew->b;
  float* y = ew->y;
  int i = start;
  for (; i + 4 <= end; i += 4) wasm_v128_store(y + i, apply(kind, wasm_v128_load(a + i), wasm_v128_load(b + i)));
  /* The tail goes through the same vector code, one lane used, so every element gets the same math. */
  for (; i < end; i++) y[i] = wasm_f32x4_extract_lane(apply(kind, wasm_f32x4_splat(a[i]), wasm_f32x4_splat(b[i])), 0);
}

/* Prepares y = kind(a, b) over `length` elements (b unused by sigmoid); returns the task count. */
int elementwise_prepare(Job* job, int kind, const float* a, const float* b, float* y, int length) {
  ElementwiseArgs* ew = JOB_ARGS(ElementwiseArgs, job);
  ew->kind = kind, ew->a = a, ew->b = b, ew->y = y, ew->length = length;
  return job_begin(job, elementwise_task, (length + CHUNK - 1) / CHUNK, 0);
}

/* The arguments and geometry of one call, in its Job. */
typedef struct {
  const float *gate, *up, *dy;
  float *d_gate, *d_up;
  int length;
} SwigluBackwardArgs;
JOB_ARGS_FIT(SwigluBackwardArgs);

INLINE void swiglu_backward4(const float* gate, const float* up, const float* dy, float* d_gate, float* d_up) {
  const v128_t g = wasm_v128_load(gate), d = wasm_v128_load(dy);
  const v128_t s = sigmoid4(g);
  const v128_t gs = wasm_f32x4_mul(g, s);
  const v128_t slope = madd(gs, wasm_f32x4_sub(wasm_f32x4_splat(1.0f), s), s);
  wasm_v128_store(d_gate, wasm_f32x4_mul(wasm_f32x4_mul(d, wasm_v128_load(up)), slope));
  wasm_v128_store(d_up, wasm_f32x4_mul(d, gs));
}

#ifdef WIDE_LANES
/* sigmoid4 and swiglu_backward4 on WIDE_LANES lanes: the same operations, so the same bits. */
INLINE wide_vector wide_sigmoid(wide_vector x) {
  const wide_vector z = wide_exp_nonpositive(-(wide_vector)((wide_int)x & 0x7fffffff));
  const wide_vector r = WIDE_SPLAT(1.0f) / (WIDE_SPLAT(1.0f) + z);
  return wide_bitselect(r, z * r, (wide_int)(x >= WIDE_SPLAT(0.0f)));
}

INLINE void wide_swiglu_backward(const float* gate, const float* up, const float* dy, float* d_gate, float* d_up) {
  const wide_vector g = WIDE_LOAD(gate), d = WIDE_LOAD(dy);
  const wide_vector s = wide_sigmoid(g);
  const wide_vector gs = g * s;
  const wide_vector slope = WIDE_FMA(gs, WIDE_SPLAT(1.0f) - s, s);
  WIDE_STORE(d_gate, (d * WIDE_LOAD(up)) * slope);
  WIDE_STORE(d_up, d * gs);
}
#endif

static void swiglu_backward_task(const Job* job, int task, int thread) {
  (void)thread;
  const SwigluBackwardArgs* sb = JOB_ARGS(const SwigluBackwardArgs, job);
  const int start = task * CHUNK, end = min_int(sb->length, start + CHUNK);
  int i = start;
#ifdef WIDE_LANES
  for (; i + WIDE_LANES <= end; i += WIDE_LANES)
    wide_swiglu_backward(sb->gate + i, sb->up + i, sb->dy + i, sb->d_gate + i, sb->d_up + i);
#endif
  for (; i + 4 <= end; i += 4) swiglu_backward4(sb->gate + i, sb->up + i, sb->dy + i, sb->d_gate + i, sb->d_up + i);
  for (; i < end; i++) {
    float g[4] = {sb->gate[i]}, u[4] = {sb->up[i]}, d[4] = {sb->dy[i]}, dg[4], du[4];
    swiglu_backward4(g, u, d, dg, du);
    sb->d_gate[i] = dg[0], sb->d_up[i] = du[0];
  }
}

/* Prepares swiglu's backward over `length` elements; returns the task count. */
int swiglu_backward_prepare(Job* job, const float* gate, const float* up, const float* dy, float* d_gate, float* d_up,
                            int length) {
  SwigluBackwardArgs* sb = JOB_ARGS(SwigluBackwardArgs, job);
  sb->gate = gate, sb->up = up, sb->dy = dy, sb->d_gate = d_gate, sb->d_up = d_up, sb->length = length;
  return job_begin(job, swiglu_backward_task, (length + CHUNK - 1) / CHUNK, 0);
}
