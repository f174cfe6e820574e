// Fused differential flash attention on tensor cores (float16/bfloat16 in, float32 accumulation):
//   out_h = RMSNorm(softmax(s·Q1·K1ᵀ)·V − λ·softmax(s·Q2·K2ᵀ)·V) · weight · outputScale
// in one kernel, FlashAttention-2 style (Dao 2023) with both maps of DIFF Transformer in the same pass.
//
// One block of 4 warps takes 64 query rows of one (batch, head); each warp owns 16 rows, for both maps, and
// all dv columns, so a row's normalisation needs only its quad (4 lanes). Keys stream in tiles of BN rows
// through shared memory (cp.async, two stages: the next tile loads while this one is computed):
//   S1 = Q1·K1ᵀ, S2 = Q2·K2ᵀ        mma m16n8k16, Q fragments from shared memory, K rows as B fragments
//   online softmax of each map       base-2 exponent; the running max moves only when it grows by more
//                                    than 8 (probabilities stay ≤ 2⁸, exact either way), which skips most
//                                    rescales of the accumulators
//   O1 += P1·V, O2 += P2·V           P re-packed from the S accumulators as A fragments (no shared memory);
//                                    each V fragment (ldmatrix.trans) is loaded once and used by both maps
// Causal tiles run heaviest first. No T×S buffer exists; memory is O(BM·dk + BN·(2dk + dv)) per block.
// When asked (diffAttentionWithStatistics), the epilogue also writes each map's log-sum-exp and own output.
#include "attention.cuh"
#include "common.cuh"
#include "mma.cuh"

namespace dtx {
namespace {

template <int DK, int DV>
struct Config {
  static constexpr int BM = 64;                 // query rows per block (16 per warp)
  static constexpr int BN = DV > 64 ? 32 : 64;  // keys per tile: fewer when the accumulators are large
  static constexpr int QS = DK + 8;             // padded row strides (elements): 16-byte aligned rows whose
  static constexpr int KS = DK + 8;             // 32-bit fragment loads and ldmatrix phases hit 32 distinct banks
  static constexpr int VS = DV + 8;
  static constexpr int Q_ELEMENTS = 2 * BM * QS;
  static constexpr int K_ELEMENTS = BN * KS;
  static constexpr int STAGE_ELEMENTS = 2 * K_ELEMENTS + BN * VS;
  static constexpr int SHARED_BYTES = (Q_ELEMENTS + 2 * STAGE_ELEMENTS) * 2;
  static_assert(DK % 16 == 0 && DV % 16 == 0 && BN % 16 == 0, "mma tiles");
};

// One map's online-softmax step on a warp's 16×BN tile of base-2 scores s (C fragments: s[nt][0..1] row g,
// s[nt][2..3] row g+8). Turns s into probabilities relative to the running max m, adds them to the
// thread's partial row sums l, and rescales the accumulators o when m moves.
template <int NT, int NO>
__device__ __forceinline__ void softmax_tile(float (&s)[NT][4], float (&m)[2], float (&l)[2], float (&o)[NO][4]) {
  float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    tile_max[0] = fmaxf(tile_max[0], fmaxf(s[nt][0], s[nt][1]));
    tile_max[1] = fmaxf(tile_max[1], fmaxf(s[nt][2], s[nt][3]));
  }
  bool move[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
    tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
    move[r] = tile_max[r] > m[r] + 8.f;  // m = −∞ moves to the first finite max
  }
  if (__any_sync(0xffffffffu, move[0] || move[1])) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float alpha = move[r] ? fast_exp2(m[r] - tile_max[r]) : 1.f;  // 0 when m was −∞
      if (move[r]) m[r] = tile_max[r];
      l[r] *= alpha;
#pragma unroll
      for (int no = 0; no < NO; ++no) {
        o[no][2 * r] *= alpha;
        o[no][2 * r + 1] *= alpha;
      }
    }
  }
  // A row that has seen no visible key yet keeps m = −∞; its masked scores give e^(−∞) = 0, not NaN.
  const float base0 = m[0] == -INFINITY ? 0.f : m[0];
  const float base1 = m[1] == -INFINITY ? 0.f : m[1];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    s[nt][0] = fast_exp2(s[nt][0] - base0);
    s[nt][1] = fast_exp2(s[nt][1] - base0);
    s[nt][2] = fast_exp2(s[nt][2] - base1);
    s[nt][3] = fast_exp2(s[nt][3] - base1);
    l[0] += s[nt][0] + s[nt][1];
    l[1] += s[nt][2] + s[nt][3];
  }
}

template <typename T, int DK, int DV>
__global__ void __launch_bounds__(128) flash_diff_kernel(const AttentionParams p) {
  using C = Config<DK, DV>;
  using M = MmaType<T>;
  constexpr int BM = C::BM, BN = C::BN, QS = C::QS, KS = C::KS, VS = C::VS;
  constexpr int NT = BN / 8;  // n8 tiles of scores per warp
  constexpr int NO = DV / 8;  // n8 tiles of output per warp and map
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* qs = reinterpret_cast<T*>(shared_raw);  // [2 maps][BM][QS]
  T* stages = qs + C::Q_ELEMENTS;            // [2 stages][K1 BN×KS | K2 BN×KS | V BN×VS]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int q_tiles = (p.tokens + BM - 1) / BM;
  const int q_tile = p.causal ? q_tiles - 1 - static_cast<int>(blockIdx.x) : static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z;
  const int q0 = q_tile * BM;
  const int group = static_cast<int>(int64_t(h) * p.kv_heads / p.heads);
  const bool shared_keys = p.key_heads == p.kv_heads;

  const T* Q = static_cast<const T*>(p.q);
  const T* K = static_cast<const T*>(p.k);
  const T* V = static_cast<const T*>(p.v);
  const int64_t q_stride = int64_t(2 * p.heads) * DK;
  const T* q_base = Q + (int64_t(b) * p.tokens * 2 * p.heads + 2 * h) * DK;
  const int64_t k_stride = int64_t(p.key_heads) * DK;
  const T* k1_base = K + (int64_t(b) * p.keys * p.key_heads + (shared_keys ? group : 2 * group)) * DK;
  const T* k2_base = shared_keys ? k1_base : k1_base + DK;
  const int64_t v_stride = int64_t(p.kv_heads) * DV;
  const T* v_base = V + (int64_t(b) * p.keys * p.kv_heads + group) * DV;

  // Keys any row of this block can see; those past it are never loaded (zero-filled) and always masked.
  const int key_end = p.causal ? min(p.key_length, p.key_offset + min(q0 + BM, p.tokens)) : p.key_length;
  const int tiles = (key_end + BN - 1) / BN;

  // Q of both maps: half-heads 2h and 2h+1 of each token, zero rows past T.
  for (int c = tid; c < 2 * BM * (DK / 8); c += 128) {
    const int map = c / (BM * (DK / 8));
    const int rest = c % (BM * (DK / 8));
    const int r = rest / (DK / 8), kc = (rest % (DK / 8)) * 8;
    const bool valid = q0 + r < p.tokens;
    cp_async_16(qs + (map * BM + r) * QS + kc, valid ? q_base + int64_t(q0 + r) * q_stride + map * DK + kc : Q, valid);
  }
  auto load_tile = [&](int tile, int stage) {
    T* k1s = stages + stage * C::STAGE_ELEMENTS;
    T* k2s = k1s + C::K_ELEMENTS;
    T* vs = k2s + C::K_ELEMENTS;
    const int s0 = tile * BN;
    for (int c = tid; c < BN * (DK / 8); c += 128) {
      const int r = c / (DK / 8), kc = (c % (DK / 8)) * 8;
      const bool valid = s0 + r < key_end;
      const int64_t offset = int64_t(s0 + r) * k_stride + kc;
      cp_async_16(k1s + r * KS + kc, valid ? k1_base + offset : K, valid);
      if (!shared_keys) cp_async_16(k2s + r * KS + kc, valid ? k2_base + offset : K, valid);
    }
    for (int c = tid; c < BN * (DV / 8); c += 128) {
      const int r = c / (DV / 8), vc = (c % (DV / 8)) * 8;
      const bool valid = s0 + r < key_end;
      cp_async_16(vs + r * VS + vc, valid ? v_base + int64_t(s0 + r) * v_stride + vc : V, valid);
    }
  };

  float o1[NO][4] = {}, o2[NO][4] = {};
  float m1[2] = {-INFINITY, -INFINITY}, m2[2] = {-INFINITY, -INFINITY};
  float l1[2] = {0.f, 0.f}, l2[2] = {0.f, 0.f};
  const float scale_log2 = p.scale * 1.4426950408889634f;
  const int row0 = warp * 16 + g;                 // this thread's rows: row0 and row0 + 8 of the block
  const int position0 = p.key_offset + q0 + row0;  // absolute position of row0

  if (tiles > 0) load_tile(0, 0);
  cp_async_commit();  // group 0: Q and the first tile
  for (int j = 0; j < tiles; ++j) {
    if (j + 1 < tiles) {
      load_tile(j + 1, (j + 1) & 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* k1s = stages + (j & 1) * C::STAGE_ELEMENTS;
    const T* k2s = shared_keys ? k1s : k1s + C::K_ELEMENTS;
    const T* vs = k1s + 2 * C::K_ELEMENTS;

    // S = Q·Kᵀ for both maps.
    float s1[NT][4] = {}, s2[NT][4] = {};
#pragma unroll
    for (int kk = 0; kk < DK / 16; ++kk) {
      const T* q1 = qs + row0 * QS + kk * 16 + 2 * t4;
      const T* q2 = q1 + BM * QS;
      const uint32_t a1[4] = {load_pair(q1), load_pair(q1 + 8 * QS), load_pair(q1 + 8), load_pair(q1 + 8 * QS + 8)};
      const uint32_t a2[4] = {load_pair(q2), load_pair(q2 + 8 * QS), load_pair(q2 + 8), load_pair(q2 + 8 * QS + 8)};
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const T* k1 = k1s + (nt * 8 + g) * KS + kk * 16 + 2 * t4;
        const T* k2 = k2s + (nt * 8 + g) * KS + kk * 16 + 2 * t4;
        M::mma(s1[nt], a1, load_pair(k1), load_pair(k1 + 8));
        M::mma(s2[nt], a2, load_pair(k2), load_pair(k2 + 8));
      }
    }

    // Base-2 scores; mask keys past keyLength and, when causal, past each row's position.
    const int s0 = j * BN;
    const bool mask = s0 + BN > p.key_length || (p.causal && s0 + BN - 1 > p.key_offset + q0);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x1 = s1[nt][e] * scale_log2, x2 = s2[nt][e] * scale_log2;
        if (mask) {
          const int key = s0 + nt * 8 + 2 * t4 + (e & 1);
          const int position = position0 + (e >> 1) * 8;
          if (key >= p.key_length || (p.causal && key > position)) x1 = x2 = -INFINITY;
        }
        s1[nt][e] = x1;
        s2[nt][e] = x2;
      }
    }
    softmax_tile(s1, m1, l1, o1);
    softmax_tile(s2, m2, l2, o2);

    // O += P·V for both maps, sharing each V fragment.
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const uint32_t p1[4] = {M::pack(s1[2 * kk][0], s1[2 * kk][1]), M::pack(s1[2 * kk][2], s1[2 * kk][3]),
                              M::pack(s1[2 * kk + 1][0], s1[2 * kk + 1][1]), M::pack(s1[2 * kk + 1][2], s1[2 * kk + 1][3])};
      const uint32_t p2[4] = {M::pack(s2[2 * kk][0], s2[2 * kk][1]), M::pack(s2[2 * kk][2], s2[2 * kk][3]),
                              M::pack(s2[2 * kk + 1][0], s2[2 * kk + 1][1]), M::pack(s2[2 * kk + 1][2], s2[2 * kk + 1][3])};
      // Lane l addresses row l % 8 of matrix l / 8: matrices (keys 0–7 | 8–15) × (columns 0–7 | 8–15).
      const int matrix = lane >> 3;
      const T* v_row = vs + (kk * 16 + (lane & 7) + (matrix & 1) * 8) * VS + (matrix >> 1) * 8;
#pragma unroll
      for (int np = 0; np < DV / 16; ++np) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, v_row + np * 16);
        M::mma(o1[2 * np], p1, vb[0], vb[1]);
        M::mma(o1[2 * np + 1], p1, vb[2], vb[3]);
        M::mma(o2[2 * np], p2, vb[0], vb[1]);
        M::mma(o2[2 * np + 1], p2, vb[2], vb[3]);
      }
    }
    __syncthreads();  // this stage is refilled by the next iteration's prefetch
  }

  // Epilogue: row sums over the quad, the difference, the fused RMSNorm, 32-bit stores.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l1[r] += __shfl_xor_sync(0xffffffffu, l1[r], 1);
    l1[r] += __shfl_xor_sync(0xffffffffu, l1[r], 2);
    l2[r] += __shfl_xor_sync(0xffffffffu, l2[r], 1);
    l2[r] += __shfl_xor_sync(0xffffffffu, l2[r], 2);
  }
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int t = q0 + row0 + 8 * r;
    const bool valid = t < p.tokens;
    float lambda = 0.f;
    if (valid) {
      lambda = load_any(p.lambda, p.lambda_dtype, p.lambda_per_token ? (int64_t(b) * p.tokens + t) * p.heads + h : h);
    }
    const float inverse1 = 1.f / l1[r];
    const float weight2 = lambda / l2[r];
    const int64_t row = (int64_t(b) * p.tokens + t) * p.heads + h;
    // Statistics for a backward: scores were scaled to base 2, so ln Σ e^s = ln 2 · (m + log2 l); and each
    // map's own output before the difference.
    if (p.log_sum_exp && valid && t4 == 0) {
      p.log_sum_exp[row * 2] = 0.6931471805599453f * (m1[r] + log2f(l1[r]));
      p.log_sum_exp[row * 2 + 1] = 0.6931471805599453f * (m2[r] + log2f(l2[r]));
    }
    if (p.map_outputs && valid) {
      float* maps = p.map_outputs + row * 2 * DV;
      const float inverse2 = 1.f / l2[r];
#pragma unroll
      for (int no = 0; no < NO; ++no) {
        const int c = no * 8 + 2 * t4;
        *reinterpret_cast<float2*>(maps + c) = make_float2(o1[no][2 * r] * inverse1, o1[no][2 * r + 1] * inverse1);
        *reinterpret_cast<float2*>(maps + DV + c) =
            make_float2(o2[no][2 * r] * inverse2, o2[no][2 * r + 1] * inverse2);
      }
    }
    float squares = 0.f;
#pragma unroll
    for (int no = 0; no < NO; ++no) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float d = o1[no][2 * r + e] * inverse1 - o2[no][2 * r + e] * weight2;
        o1[no][2 * r + e] = d;
        squares += d * d;
      }
    }
    float gain = 1.f;
    if (p.norm) {
      squares += __shfl_xor_sync(0xffffffffu, squares, 1);
      squares += __shfl_xor_sync(0xffffffffu, squares, 2);
      gain = p.output_scale * rsqrtf(squares / DV + p.eps);
    }
    if (!valid) continue;
    T* y = out + ((int64_t(b) * p.tokens + t) * p.heads + h) * DV;
#pragma unroll
    for (int no = 0; no < NO; ++no) {
      const int c = no * 8 + 2 * t4;
      float y0 = o1[no][2 * r] * gain, y1 = o1[no][2 * r + 1] * gain;
      if (p.norm && p.norm_weight) {
        y0 *= load_any(p.norm_weight, p.norm_weight_dtype, c);
        y1 *= load_any(p.norm_weight, p.norm_weight_dtype, c + 1);
      }
      *reinterpret_cast<uint32_t*>(y + c) = M::pack(y0, y1);
    }
  }
}

template <typename T, int DK, int DV>
cudaError_t launch(const AttentionParams& p, cudaStream_t stream) {
  using C = Config<DK, DV>;
  const auto kernel = flash_diff_kernel<T, DK, DV>;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SHARED_BYTES);
  if (e != cudaSuccess) return e;
  const dim3 grid((p.tokens + C::BM - 1) / C::BM, p.heads, p.batch);
  kernel<<<grid, 128, C::SHARED_BYTES, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t dispatch(const AttentionParams& p, cudaStream_t stream) {
  if (p.dk == 32 && p.dv == 32) return launch<T, 32, 32>(p, stream);
  if (p.dk == 32 && p.dv == 64) return launch<T, 32, 64>(p, stream);
  if (p.dk == 64 && p.dv == 64) return launch<T, 64, 64>(p, stream);
  if (p.dk == 64 && p.dv == 128) return launch<T, 64, 128>(p, stream);
  if (p.dk == 128 && p.dv == 128) return launch<T, 128, 128>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace

bool flash_diff_supported(int dk, int dv) {
  return (dk == 32 && (dv == 32 || dv == 64)) || (dk == 64 && (dv == 64 || dv == 128)) || (dk == 128 && dv == 128);
}

cudaError_t flash_diff_attention(const AttentionParams& p, cudaStream_t stream) {
  if (p.dtype == kFloat16) return dispatch<__half>(p, stream);
  if (p.dtype == kBFloat16) return dispatch<__nv_bfloat16>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace dtx
