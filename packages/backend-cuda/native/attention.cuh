// Internal interface between the attention dispatcher (attention.cu) and the tensor-core kernel
// (flash_diff.cu).
#pragma once
#include "kernels.h"

namespace dtx {

// Whether flash_diff_attention has an instantiation for these head widths (dk, dv).
bool flash_diff_supported(int dk, int dv);
// Fused differential flash attention on tensor cores (float16/bfloat16 only, diff only).
cudaError_t flash_diff_attention(const AttentionParams& p, cudaStream_t stream);

}  // namespace dtx
