// Internal interface between the attention dispatcher (attention.cu) and the tensor-core kernels (flash.cuh,
// instantiated per storage type in flash_f16.cu, flash_bf16.cu and flash_f32.cu).
#pragma once
#include <cstddef>

#include "kernels.h"

namespace dtx {

// What one flash instantiation needs: shared memory (0 when no instantiation exists), keys per tile, threads.
struct FlashShape {
  size_t shared_bytes;
  int keys_per_tile;
  int threads;
};
// For differential (maps 2; key_maps 2 with per-map keys, 1 with shared keys) or standard attention (maps 1).
FlashShape flash_shape(int dtype, int maps, int dk, int dv, int key_maps, int stages);

namespace flash {
// What the launcher decided besides the shape: pipeline depth, key splits and where their partials go.
struct Launch {
  int stages;        // 2 or 3
  int splits;        // ≥ 1; > 1: write partials to `workspace` (attention.cu combines them)
  float* workspace;  // [rows, splits, 4 + 2·dv] floats: m1 l1 m2 l2 (natural-log units), o1[dv], o2[dv]
};
}  // namespace flash

cudaError_t flash_attention_f16(const AttentionParams& p, const flash::Launch& launch, cudaStream_t stream);
cudaError_t flash_attention_bf16(const AttentionParams& p, const flash::Launch& launch, cudaStream_t stream);
cudaError_t flash_attention_f32(const AttentionParams& p, const flash::Launch& launch, cudaStream_t stream);

}  // namespace dtx
