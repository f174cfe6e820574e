// The flash attention kernels (flash.cuh) stored as float: one file per storage type, so the build compiles
// the three sets side by side.
#include "flash.cuh"

namespace dtx {

cudaError_t flash_attention_f32(const AttentionParams& p, const flash::Launch& launch, cudaStream_t stream) {
  return flash::dispatch<float>(p, launch, stream);
}

}  // namespace dtx
