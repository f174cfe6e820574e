#!/usr/bin/env bash
# The WebGPU steps of scripts/gpu-session.sh alone (conformance through Dawn on the GPU's Vulkan driver,
# matmul 2048³ and 4096³ with both tiles, both attention kernels at T = 1K, 4K, 16K, the bench model's
# forward and decode), under the same budgets, on a machine with a GPU and its Vulkan driver, from the root
# of a checkout prepared by scripts/gpu-prepare.sh:
#   bash packages/backend-webgpu/scripts/gpu-check.sh
# Results as gpu-session.sh writes them, under $OUT (default ./gpu-session-out): summary.txt and
# gpu-session.tar.gz.
cd "$(dirname "$0")/../../.."
# Node, the Vulkan loader, the NVIDIA Vulkan driver and dawn.node: through scripts/gpu-env.sh, which uses
# what scripts/gpu-prepare.sh packed into .gpu/ where the machine lacks it.
if [ -z "${DIFFTX_GPU_READY:-}" ] && [ -d .gpu ]; then
  exec bash scripts/gpu-env.sh bash scripts/gpu-session.sh --only webgpu "$@"
fi
exec bash scripts/gpu-session.sh --only webgpu "$@"
