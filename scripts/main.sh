#!/usr/bin/env bash
# The main job: install everything, build, and run the conformance suite on every backend.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# WebGPU where no Vulkan driver is installed: Dawn on SwiftShader, the CPU Vulkan of Debian's chromium
# (its ICD's path is the backend's SWIFTSHADER_ICD, kept in one place).
swiftshader=$(node -p "require('./packages/backend-webgpu/dist/index.cjs').SWIFTSHADER_ICD")
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && [ -f "$swiftshader" ] &&
  ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  export VK_ICD_FILENAMES=$swiftshader
fi
node apps/cli/dist/difftx.js conformance --backend all "$@"
