// Flash attention on tensor cores for both attention kernels of the contract, FlashAttention-2 style (Dao 2023):
//   MAPS = 2 (differential):  out_h = RMSNorm(softmax(s·Q1·K1ᵀ)·V − λ·softmax(s·Q2·K2ᵀ)·V) · weight · outputScale
//   MAPS = 1 (standard):      out_h = softmax(s·Q·Kᵀ)·V
// in one kernel, both maps of DIFF Transformer in the same pass over the keys, no T×S buffer.
//
// Storage types and products:
//   float16 / bfloat16   mma.sync m16n8k16, float32 accumulation
//   float32              mma.sync m16n8k8 TF32 as 3xTF32 (x = big + small, both TF32; big·big + big·small +
//                        small·big), so float32 attention keeps float32 accuracy on tensor cores
//
// A block takes 64 query rows of one (batch, head) with 4 warps along the rows (16 each) and WN warps along the
// value columns (WN = 2 when a warp's accumulators for all dv columns of both maps would not fit in registers:
// each warp then owns dv/2 columns and recomputes the scores; the norm's sum of squares crosses warps through
// shared memory). Keys stream in tiles of BN rows through shared memory with cp.async in 2 or 3 stages (3 where
// the device grants the shared memory): one barrier per tile. Each tile is computed in steps of BNC keys:
//   S = Q·Kᵀ per map         Q fragments in registers (loaded once by ldmatrix) where they fit, else by ldmatrix
//                            from shared memory; K fragments by ldmatrix.x4
//   online softmax per map   base 2; the running max moves only when it grows by more than 8 (probabilities stay
//                            ≤ 2⁸, exact either way), which skips most rescales of the accumulators
//   O += P·V per map         P re-packed from the S accumulators as A fragments (no shared memory); each V
//                            fragment (ldmatrix.trans) is loaded once for both maps
// Causal query tiles run heaviest first. With `splits` > 1 each block takes a contiguous share of its key tiles
// and writes an unnormalised partial (m, l per map, then o per map) that attention.cu's combine kernel merges
// and finishes: short prefills against a long cache and decoding then fill the device.
#pragma once
#include <type_traits>

#include "attention.cuh"
#include "common.cuh"
#include "mma.cuh"

namespace dtx {
namespace flash {

constexpr int kWarpsM = 4;             // warps along the query rows
constexpr int kBM = 16 * kWarpsM;      // query rows per block
constexpr int kFitBytes = 96 * 1024;   // Q + 2 stages stay within this on every target (sm_86/89 grant 99 KiB)

// Everything that depends only on the storage width and the shape; host and device agree on it.
template <int BYTES, int MAPS, int DK, int DV>
struct Config {
  static constexpr bool kHalf = BYTES == 2;
  static constexpr int WN = MAPS * DV > 256 ? 2 : 1;  // warps along dv
  static constexpr int DVW = DV / WN;                 // value columns per warp
  static constexpr int THREADS = 32 * kWarpsM * WN;
  static constexpr int KSTEP = kHalf ? 16 : 8;        // k of one mma
  static constexpr int CHUNK = 16 / BYTES;            // elements per 16-byte copy
  // Padded row strides (elements). 16-bit: rows 16 bytes apart modulo 128 make each 8×8 ldmatrix phase hit 32
  // distinct banks. float32: a stride ≡ 4 (mod 32) words makes the 32 lanes' scalar fragment loads (row g,
  // column t, or rows 2t/2t+1, column g) hit 32 distinct banks.
  static constexpr int PAD = kHalf ? 8 : 4;
  static constexpr int QS = DK + PAD, KS = DK + PAD, VS = DV + PAD;
  static constexpr int Q_BYTES = MAPS * kBM * QS * BYTES;
  static constexpr int stage_bytes(int bn, int key_maps) { return (key_maps * bn * KS + bn * VS) * BYTES; }
  static constexpr bool fits(int bn) { return Q_BYTES + 2 * stage_bytes(bn, MAPS) <= kFitBytes; }
  // Keys per tile: the largest of 64, 32, 16 whose two stages fit; keys per compute step: fewer when the
  // accumulators are large, to bound the registers held by the scores.
  static constexpr int BN = fits(64) ? 64 : fits(32) ? 32 : 16;
  static constexpr int BNC_REGISTERS = MAPS * DVW >= 256 ? 32 : 64;
  static constexpr int BNC = BN < BNC_REGISTERS ? BN : BNC_REGISTERS;
  static constexpr int NORM_BYTES = WN > 1 ? WN * kBM * 4 : 0;  // cross-warp sums of squares
  static constexpr bool Q_IN_REGISTERS = kHalf && MAPS * DK <= 128 && MAPS * DVW < 256;
  static_assert(DK % 16 == 0 && DVW % 16 == 0 && BN % BNC == 0 && BNC % 16 == 0, "tile shapes");
};

// ---- fragments -------------------------------------------------------------------------------------------------

// float32 → TF32 (round to nearest, ties away), as a 32-bit register with the low 13 mantissa bits zero.
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}
struct Split {
  uint32_t big, small;
};
__device__ __forceinline__ Split split_tf32(float x) {
  const uint32_t big = to_tf32(x);
  return {big, to_tf32(x - __uint_as_float(big))};
}
// m16n8k8 TF32 fragments (PTX ISA): A a0 = (g, t) a1 = (g+8, t) a2 = (g, t+4) a3 = (g+8, t+4);
// B b0 = (k t, n g) b1 = (k t+4, n g); C as m16n8k16.
__device__ __forceinline__ void mma_tf32(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
// 3xTF32: the small·small term (below float32's precision) is dropped; the small terms go first.
__device__ __forceinline__ void mma_3xtf32(float (&c)[4], const Split (&a)[4], Split b0, Split b1) {
  mma_tf32(c, a[0].small, a[1].small, a[2].small, a[3].small, b0.big, b1.big);
  mma_tf32(c, a[0].big, a[1].big, a[2].big, a[3].big, b0.small, b1.small);
  mma_tf32(c, a[0].big, a[1].big, a[2].big, a[3].big, b0.big, b1.big);
}

// Four 8×8 16-bit matrices, not transposed: lane l gives the address of row l % 8 of matrix l / 8; register i
// receives, of matrix i, (row g, columns 2t, 2t+1).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row_address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row_address)));
}

// One map's online-softmax step on a warp's 16×NT·8 tile of base-2 scores s (C fragments: s[nt][0..1] row g,
// s[nt][2..3] row g+8). Turns s into probabilities relative to the running max m, adds them to the thread's
// partial row sums l, and rescales the accumulators o when m moves.
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
  // A row that has seen no visible key yet keeps m = −∞; its masked scores give 2^(−∞) = 0, not NaN.
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


template <typename T, int MAPS, int DK, int DV>
__global__ void __launch_bounds__(Config<sizeof(T), MAPS, DK, DV>::THREADS, 1)
    flash_kernel(const AttentionParams p, const Launch launch) {
  using C = Config<sizeof(T), MAPS, DK, DV>;
  constexpr bool kHalf = C::kHalf;
  constexpr int BN = C::BN, BNC = C::BNC, QS = C::QS, KS = C::KS, VS = C::VS, DVW = C::DVW;
  constexpr int NT = BNC / 8;   // n8 tiles of scores per compute step
  constexpr int NO = DVW / 8;   // n8 tiles of output per warp and map
  constexpr int QK = DK / 16;   // 16-wide slices of dk (half: one mma k; float: two)
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* qs = reinterpret_cast<T*>(shared_raw);                                // [MAPS][BM][QS]
  T* stages = reinterpret_cast<T*>(shared_raw + C::Q_BYTES);               // [stages][K maps BN×KS | V BN×VS]
  const bool shared_keys = MAPS == 1 || p.key_heads == p.kv_heads;
  const int key_maps = shared_keys ? 1 : 2;
  const int stage_elements = key_maps * BN * KS + BN * VS;
  float* norm_sums = reinterpret_cast<float*>(shared_raw + C::Q_BYTES + launch.stages * stage_elements * sizeof(T));

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int wm = warp % kWarpsM, wn = warp / kWarpsM;
  const int q_tiles = (p.tokens + kBM - 1) / kBM;
  const int q_tile = p.causal ? q_tiles - 1 - static_cast<int>(blockIdx.x) : static_cast<int>(blockIdx.x);
  const int h = blockIdx.y;
  const int b = static_cast<int>(blockIdx.z) / launch.splits, split = static_cast<int>(blockIdx.z) % launch.splits;
  const int q0 = q_tile * kBM;
  const int group = static_cast<int>(int64_t(h) * p.kv_heads / p.heads);

  const T* Q = static_cast<const T*>(p.q);
  const T* K = static_cast<const T*>(p.k);
  const T* V = static_cast<const T*>(p.v);
  const int64_t q_stride = int64_t(MAPS * p.heads) * DK;
  const T* q_base = Q + (int64_t(b) * p.tokens * MAPS * p.heads + MAPS * h) * DK;
  const int64_t k_stride = int64_t(p.key_heads) * DK;
  const T* k1_base = K + (int64_t(b) * p.keys * p.key_heads + (shared_keys ? group : 2 * group)) * DK;
  const int64_t v_stride = int64_t(p.kv_heads) * DV;
  const T* v_base = V + (int64_t(b) * p.keys * p.kv_heads + group) * DV;

  // Keys any row of this block can see; those past it are never loaded (zero-filled) and always masked. With
  // splits, this block takes tiles [tile_begin, tile_end) of them.
  const int key_end = p.causal ? min(p.key_length, p.key_offset + min(q0 + kBM, p.tokens)) : p.key_length;
  const int all_tiles = (key_end + BN - 1) / BN;
  const int per_split = (all_tiles + launch.splits - 1) / launch.splits;
  const int tile_begin = min(all_tiles, split * per_split);
  const int tiles = min(all_tiles, tile_begin + per_split) - tile_begin;

  // Q of every map: half-heads MAPS·h + map of each token, zero rows past T.
  for (int c = tid; c < MAPS * kBM * (DK / C::CHUNK); c += C::THREADS) {
    const int map = c / (kBM * (DK / C::CHUNK));
    const int rest = c % (kBM * (DK / C::CHUNK));
    const int r = rest / (DK / C::CHUNK), kc = (rest % (DK / C::CHUNK)) * C::CHUNK;
    const bool valid = q0 + r < p.tokens;
    cp_async_16(qs + (map * kBM + r) * QS + kc, valid ? q_base + int64_t(q0 + r) * q_stride + map * DK + kc : Q,
                valid);
  }
  auto load_tile = [&](int tile, int stage) {
    T* ks = stages + stage * stage_elements;
    T* vs = ks + key_maps * BN * KS;
    const int s0 = (tile_begin + tile) * BN;
    for (int c = tid; c < key_maps * BN * (DK / C::CHUNK); c += C::THREADS) {
      const int map = c / (BN * (DK / C::CHUNK));
      const int rest = c % (BN * (DK / C::CHUNK));
      const int r = rest / (DK / C::CHUNK), kc = (rest % (DK / C::CHUNK)) * C::CHUNK;
      const bool valid = s0 + r < key_end;
      const int64_t offset = int64_t(s0 + r) * k_stride + map * DK + kc;  // map 2's keys: the next half-head
      cp_async_16(ks + (map * BN + r) * KS + kc, valid ? k1_base + offset : K, valid);
    }
    for (int c = tid; c < BN * (DV / C::CHUNK); c += C::THREADS) {
      const int r = c / (DV / C::CHUNK), vc = (c % (DV / C::CHUNK)) * C::CHUNK;
      const bool valid = s0 + r < key_end;
      cp_async_16(vs + r * VS + vc, valid ? v_base + int64_t(s0 + r) * v_stride + vc : V, valid);
    }
  };

  float o[MAPS][NO][4] = {};
  float m[MAPS][2], l[MAPS][2];
#pragma unroll
  for (int map = 0; map < MAPS; ++map) m[map][0] = m[map][1] = -INFINITY, l[map][0] = l[map][1] = 0.f;
  uint32_t qf[C::Q_IN_REGISTERS ? MAPS : 1][C::Q_IN_REGISTERS ? QK : 1][4];  // Q fragments, when kept
  const float scale_log2 = p.scale * 1.4426950408889634f;
  const int row0 = wm * 16 + g;                    // this thread's rows: row0 and row0 + 8 of the block
  const int position0 = p.key_offset + q0 + row0;  // absolute position of row0
  const bool warp_rows = q0 + wm * 16 < p.tokens;  // a warp whose 16 rows are all past T only loads
  const int column0 = wn * DVW;                    // this warp's first value column

  // Prologue: Q with the first tile in group 0, then the other stages but one; empty groups keep the count.
  if (tiles > 0) load_tile(0, 0);
  cp_async_commit();
  for (int s = 1; s < launch.stages - 1; ++s) {
    if (s < tiles) load_tile(s, s);
    cp_async_commit();
  }
  for (int j = 0; j < tiles; ++j) {
    if (launch.stages == 3) cp_async_wait<1>();
    else cp_async_wait<0>();
    __syncthreads();  // tile j is in; every warp is done with the stage the next prefetch refills
    if constexpr (C::Q_IN_REGISTERS) {
      if (j == 0) {
        // ldmatrix.x4 of a 16×16 slice: matrices (rows 0–7 | 8–15) × (columns 0–7 | 8–15) = a0..a3.
        const int matrix = lane >> 3;
#pragma unroll
        for (int map = 0; map < MAPS; ++map)
#pragma unroll
          for (int kk = 0; kk < QK; ++kk)
            ldmatrix_x4(qf[map][kk], qs + (map * kBM + wm * 16 + (lane & 7) + (matrix & 1) * 8) * QS + kk * 16 +
                                         (matrix >> 1) * 8);
      }
    }
    const int next = j + launch.stages - 1;
    if (next < tiles) load_tile(next, next % launch.stages);
    cp_async_commit();
    if (!warp_rows) continue;

    const T* ks = stages + (j % launch.stages) * stage_elements;
    const T* vs = ks + key_maps * BN * KS;
#pragma unroll 1
    for (int step = 0; step < BN / BNC; ++step) {
      const int s0 = (tile_begin + j) * BN + step * BNC;  // first key of this step
      const int sk = step * BNC;                          // its row in the stage
      const bool mask = s0 + BNC > p.key_length || (p.causal && s0 + BNC - 1 > p.key_offset + q0 + wm * 16);
      float s[MAPS][NT][4] = {};
      // S = Q·Kᵀ for each map.
#pragma unroll
      for (int map = 0; map < MAPS; ++map) {
        const T* kmap = ks + (shared_keys ? 0 : map) * BN * KS;
#pragma unroll
        for (int kk = 0; kk < QK; ++kk) {
          if constexpr (kHalf) {
            using M = MmaType<T>;
            uint32_t a[4];
            if constexpr (C::Q_IN_REGISTERS) {
#pragma unroll
              for (int i = 0; i < 4; ++i) a[i] = qf[map][kk][i];
            } else {
              const int matrix = lane >> 3;
              ldmatrix_x4(a, qs + (map * kBM + wm * 16 + (lane & 7) + (matrix & 1) * 8) * QS + kk * 16 +
                                 (matrix >> 1) * 8);
            }
            // K as B fragments, two n8 tiles per ldmatrix.x4: matrices (keys 0–7 | 8–15) × (dk 0–7 | 8–15)
            // = b0, b1 of tile nt, b0, b1 of tile nt + 1.
            const int matrix = lane >> 3;
#pragma unroll
            for (int nt = 0; nt < NT; nt += 2) {
              uint32_t kb[4];
              ldmatrix_x4(kb, kmap + (sk + nt * 8 + (lane & 7) + (matrix >> 1) * 8) * KS + kk * 16 + (matrix & 1) * 8);
              M::mma(s[map][nt], a, kb[0], kb[1]);
              M::mma(s[map][nt + 1], a, kb[2], kb[3]);
            }
          } else {
#pragma unroll
            for (int half = 0; half < 2; ++half) {
              const int k0 = kk * 16 + half * 8;
              const float* qrow = reinterpret_cast<const float*>(qs) + (map * kBM + row0) * QS + k0 + t4;
              const Split a[4] = {split_tf32(qrow[0]), split_tf32(qrow[8 * QS]), split_tf32(qrow[4]),
                                  split_tf32(qrow[8 * QS + 4])};
#pragma unroll
              for (int nt = 0; nt < NT; ++nt) {
                const float* krow = reinterpret_cast<const float*>(kmap) + (sk + nt * 8 + g) * KS + k0 + t4;
                mma_3xtf32(s[map][nt], a, split_tf32(krow[0]), split_tf32(krow[4]));
              }
            }
          }
        }
      }

      // Base-2 scores; mask keys past keyLength and, when causal, past each row's position.
#pragma unroll
      for (int map = 0; map < MAPS; ++map)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            float x = s[map][nt][e] * scale_log2;
            if (mask) {
              const int key = s0 + nt * 8 + 2 * t4 + (e & 1);
              const int position = position0 + (e >> 1) * 8;
              if (key >= p.key_length || (p.causal && key > position)) x = -INFINITY;
            }
            s[map][nt][e] = x;
          }
#pragma unroll
      for (int map = 0; map < MAPS; ++map) softmax_tile(s[map], m[map], l[map], o[map]);

      // O += P·V for every map, sharing each V fragment.
      if constexpr (kHalf) {
        using M = MmaType<T>;
        const int matrix = lane >> 3;
#pragma unroll
        for (int kk = 0; kk < BNC / 16; ++kk) {
          uint32_t pa[MAPS][4];
#pragma unroll
          for (int map = 0; map < MAPS; ++map) {
            pa[map][0] = M::pack(s[map][2 * kk][0], s[map][2 * kk][1]);
            pa[map][1] = M::pack(s[map][2 * kk][2], s[map][2 * kk][3]);
            pa[map][2] = M::pack(s[map][2 * kk + 1][0], s[map][2 * kk + 1][1]);
            pa[map][3] = M::pack(s[map][2 * kk + 1][2], s[map][2 * kk + 1][3]);
          }
          // Lane l addresses row l % 8 of matrix l / 8: matrices (keys 0–7 | 8–15) × (columns 0–7 | 8–15).
          const T* v_row = vs + (sk + kk * 16 + (lane & 7) + (matrix & 1) * 8) * VS + column0 + (matrix >> 1) * 8;
#pragma unroll
          for (int np = 0; np < DVW / 16; ++np) {
            uint32_t vb[4];
            ldmatrix_x4_trans(vb, v_row + np * 16);
#pragma unroll
            for (int map = 0; map < MAPS; ++map) {
              M::mma(o[map][2 * np], pa[map], vb[0], vb[1]);
              M::mma(o[map][2 * np + 1], pa[map], vb[2], vb[3]);
            }
          }
        }
      } else {
        // TF32's A fragment holds columns t and t+4 where the scores' C fragment holds 2t and 2t+1: read the k
        // index t as key 2t and t+4 as key 2t+1 (a sum over keys does not depend on their order), and load V's
        // rows 2t and 2t+1 to match. No data moves between lanes.
        const float* vsf = reinterpret_cast<const float*>(vs);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          Split pa[MAPS][4];
#pragma unroll
          for (int map = 0; map < MAPS; ++map) {
            pa[map][0] = split_tf32(s[map][nt][0]);
            pa[map][1] = split_tf32(s[map][nt][2]);
            pa[map][2] = split_tf32(s[map][nt][1]);
            pa[map][3] = split_tf32(s[map][nt][3]);
          }
          const float* v_row = vsf + (sk + nt * 8 + 2 * t4) * VS + column0 + g;
#pragma unroll
          for (int no = 0; no < NO; ++no) {
            const Split b0 = split_tf32(v_row[no * 8]), b1 = split_tf32(v_row[VS + no * 8]);
#pragma unroll
            for (int map = 0; map < MAPS; ++map) mma_3xtf32(o[map][no], pa[map], b0, b1);
          }
        }
      }
    }
  }

  cp_async_wait<0>();  // a block with no key tiles still has Q in flight; shared memory must not outlive it

  // Epilogue. Row sums over the quad.
#pragma unroll
  for (int map = 0; map < MAPS; ++map)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l[map][r] += __shfl_xor_sync(0xffffffffu, l[map][r], 1);
      l[map][r] += __shfl_xor_sync(0xffffffffu, l[map][r], 2);
    }

  if (launch.splits > 1) {
    // A partial per (row, split): m in natural-log units (scores were scaled to base 2), l, unnormalised o.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int t = q0 + row0 + 8 * r;
      if (t >= p.tokens) continue;
      const int64_t row = (int64_t(b) * p.tokens + t) * p.heads + h;
      float* partial = launch.workspace + (row * launch.splits + split) * (4 + 2 * int64_t(p.dv));
      if (wn == 0 && t4 == 0) {
        partial[0] = 0.6931471805599453f * m[0][r];
        partial[1] = l[0][r];
        partial[2] = MAPS == 2 ? 0.6931471805599453f * m[MAPS - 1][r] : -INFINITY;
        partial[3] = MAPS == 2 ? l[MAPS - 1][r] : 0.f;
      }
#pragma unroll
      for (int map = 0; map < MAPS; ++map)
#pragma unroll
        for (int no = 0; no < NO; ++no) {
          const int c = column0 + no * 8 + 2 * t4;
          *reinterpret_cast<float2*>(partial + 4 + map * DV + c) =
              make_float2(o[map][no][2 * r], o[map][no][2 * r + 1]);
        }
    }
    return;
  }

  T* out = static_cast<T*>(p.out);
  float squares[2] = {0.f, 0.f};
  float gain[2] = {1.f, 1.f};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int t = q0 + row0 + 8 * r;
    const bool valid = t < p.tokens;
    const int64_t row = (int64_t(b) * p.tokens + t) * p.heads + h;
    const float inverse1 = __fdividef(1.f, l[0][r]);
    // Statistics for a backward: ln Σ e^s = ln 2 · (m + log2 l) per map; and (diff) each map's own output.
    if (p.log_sum_exp && valid && wn == 0 && t4 == 0) {
#pragma unroll
      for (int map = 0; map < MAPS; ++map)
        p.log_sum_exp[row * MAPS + map] = 0.6931471805599453f * (m[map][r] + log2f(l[map][r]));
    }
    if constexpr (MAPS == 2) {
      const float inverse2 = __fdividef(1.f, l[1][r]);
      if (p.map_outputs && valid) {
        float* maps = p.map_outputs + row * 2 * DV;
#pragma unroll
        for (int no = 0; no < NO; ++no) {
          const int c = column0 + no * 8 + 2 * t4;
          *reinterpret_cast<float2*>(maps + c) =
              make_float2(o[0][no][2 * r] * inverse1, o[0][no][2 * r + 1] * inverse1);
          *reinterpret_cast<float2*>(maps + DV + c) =
              make_float2(o[1][no][2 * r] * inverse2, o[1][no][2 * r + 1] * inverse2);
        }
      }
      const float lambda =
          valid ? load_any(p.lambda, p.lambda_dtype, p.lambda_per_token ? row : h) : 0.f;
      const float weight2 = lambda * inverse2;
#pragma unroll
      for (int no = 0; no < NO; ++no)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float d = o[0][no][2 * r + e] * inverse1 - o[1][no][2 * r + e] * weight2;
          o[0][no][2 * r + e] = d;
          squares[r] += d * d;
        }
      squares[r] += __shfl_xor_sync(0xffffffffu, squares[r], 1);
      squares[r] += __shfl_xor_sync(0xffffffffu, squares[r], 2);
    } else {
#pragma unroll
      for (int no = 0; no < NO; ++no) {
        o[0][no][2 * r] *= inverse1;
        o[0][no][2 * r + 1] *= inverse1;
      }
    }
  }
  if constexpr (MAPS == 2) {
    if (p.norm) {
      if constexpr (C::WN > 1) {
        // Each warp along dv summed its own columns: add the others' through shared memory (all warps reach here).
        __syncthreads();
        if (t4 == 0) {
          norm_sums[wn * kBM + row0] = squares[0];
          norm_sums[wn * kBM + row0 + 8] = squares[1];
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          squares[r] = 0.f;
#pragma unroll
          for (int w = 0; w < C::WN; ++w) squares[r] += norm_sums[w * kBM + row0 + 8 * r];
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) gain[r] = p.output_scale * rsqrtf(squares[r] / DV + p.eps);
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int t = q0 + row0 + 8 * r;
    if (t >= p.tokens) continue;
    T* y = out + ((int64_t(b) * p.tokens + t) * p.heads + h) * DV;
#pragma unroll
    for (int no = 0; no < NO; ++no) {
      const int c = column0 + no * 8 + 2 * t4;
      float y0 = o[0][no][2 * r] * gain[r], y1 = o[0][no][2 * r + 1] * gain[r];
      if (MAPS == 2 && p.norm && p.norm_weight) {
        y0 *= load_any(p.norm_weight, p.norm_weight_dtype, c);
        y1 *= load_any(p.norm_weight, p.norm_weight_dtype, c + 1);
      }
      if constexpr (kHalf) *reinterpret_cast<uint32_t*>(y + c) = MmaType<T>::pack(y0, y1);
      else *reinterpret_cast<float2*>(y + c) = make_float2(y0, y1);
    }
  }
}

template <typename T, int MAPS, int DK, int DV>
size_t shared_bytes(int stages, int key_maps) {
  using C = Config<sizeof(T), MAPS, DK, DV>;
  return size_t(C::Q_BYTES) + size_t(stages) * C::stage_bytes(C::BN, key_maps) + C::NORM_BYTES;
}

template <typename T, int MAPS, int DK, int DV>
cudaError_t launch_kernel(const AttentionParams& p, const Launch& launch, cudaStream_t stream) {
  using C = Config<sizeof(T), MAPS, DK, DV>;
  const auto kernel = flash_kernel<T, MAPS, DK, DV>;
  const int key_maps = MAPS == 2 && p.key_heads != p.kv_heads ? 2 : 1;
  const size_t bytes = shared_bytes<T, MAPS, DK, DV>(launch.stages, key_maps);
  const cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (e != cudaSuccess) return e;
  const dim3 grid((p.tokens + kBM - 1) / kBM, p.heads, p.batch * launch.splits);
  kernel<<<grid, C::THREADS, bytes, stream>>>(p, launch);
  return cudaGetLastError();
}

// Every (maps, dk, dv) with an instantiation: differential attention V1 (d, 2d) and V2 (d, d), standard
// attention (d, d), for head widths d of 16, 32, 64, 96 and 128.
#define DTX_FLASH_SHAPES(X)                                                                                  \
  X(2, 16, 16) X(2, 16, 32) X(2, 32, 32) X(2, 32, 64) X(2, 64, 64) X(2, 64, 128) X(2, 96, 96) X(2, 96, 192) \
      X(2, 128, 128) X(2, 128, 256) X(1, 16, 16) X(1, 32, 32) X(1, 64, 64) X(1, 96, 96) X(1, 128, 128)

// The shape's shared memory for `stages` and its keys per tile; bytes = 0 when no instantiation exists.
template <typename T>
FlashShape shape_of(int maps, int dk, int dv, int key_maps, int stages) {
#define DTX_FLASH_SHAPE(M, DK_, DV_)                                                          \
  if (maps == M && dk == DK_ && dv == DV_)                                                   \
    return FlashShape{shared_bytes<T, M, DK_, DV_>(stages, key_maps), Config<sizeof(T), M, DK_, DV_>::BN, \
                      Config<sizeof(T), M, DK_, DV_>::THREADS};
  DTX_FLASH_SHAPES(DTX_FLASH_SHAPE)
#undef DTX_FLASH_SHAPE
  return FlashShape{0, 0, 0};
}

template <typename T>
cudaError_t dispatch(const AttentionParams& p, const Launch& launch, cudaStream_t stream) {
  const int maps = p.diff ? 2 : 1;
#define DTX_FLASH_LAUNCH(M, DK_, DV_) \
  if (maps == M && p.dk == DK_ && p.dv == DV_) return launch_kernel<T, M, DK_, DV_>(p, launch, stream);
  DTX_FLASH_SHAPES(DTX_FLASH_LAUNCH)
#undef DTX_FLASH_LAUNCH
  return cudaErrorInvalidValue;
}

}  // namespace flash
}  // namespace dtx
