#!/usr/bin/env bash
# Runs on the GPU machine, from anywhere in a checkout prepared by scripts/gpu-prepare.sh:
#   bash scripts/gpu-env.sh COMMAND ARGS...
# Sets up, only where the machine lacks it, what gpu-prepare.sh packed into .gpu/, says what it found,
# then runs COMMAND from the checkout's root:
#   - Node.js: .gpu/node.xz when there is no Node.js 20 or newer on PATH;
#   - the Vulkan loader (for WebGPU through Dawn): .gpu/debs unpacked under .gpu/root and found through
#     LD_LIBRARY_PATH when libvulkan.so.1 or libGLdispatch.so.0 is not installed (nothing is installed);
#   - NVIDIA's Vulkan driver manifest: when none is in the loader's directories, the one NVIDIA's
#     container images mount under /usr/local/nvidia (VK_DRIVER_FILES), unless the environment names one;
#   - dawn.node: .gpu/dawn.node.xz, named by DIFFTX_DAWN_NODE.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gpu=$root/.gpu
cd "$root"
export DIFFTX_GPU_READY=1

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  if [ ! -s "$gpu/node.xz" ]; then
    echo "gpu-env: no Node.js 20+ here and no .gpu/node.xz (scripts/gpu-prepare.sh packs it)" >&2
    exit 1
  fi
  mkdir -p "$gpu/bin"
  [ -x "$gpu/bin/node" ] || { xz -d -c "$gpu/node.xz" > "$gpu/bin/node.tmp" && chmod +x "$gpu/bin/node.tmp" &&
    mv "$gpu/bin/node.tmp" "$gpu/bin/node"; }
  export PATH=$gpu/bin:$PATH
fi

libraries=$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null || true)
installed() { [[ $libraries == *"$1"* ]]; }
if ! installed libvulkan.so.1 || ! installed libGLdispatch.so.0; then
  if ls "$gpu"/debs/*.deb >/dev/null 2>&1; then
    [ -d "$gpu/root" ] || for deb in "$gpu"/debs/*.deb; do dpkg-deb -x "$deb" "$gpu/root"; done
    export LD_LIBRARY_PATH=$gpu/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  else
    echo "gpu-env: no Vulkan loader here and no .gpu/debs: WebGPU will report itself unavailable" >&2
  fi
fi

if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] &&
  ! ls /etc/vulkan/icd.d/nvidia*.json /usr/share/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; break; fi
  done
fi
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi

if [ -z "${DIFFTX_DAWN_NODE:-}" ] && [ -s "$gpu/dawn.node.xz" ]; then
  [ "$gpu/dawn.node" -nt "$gpu/dawn.node.xz" ] || { xz -d -c "$gpu/dawn.node.xz" > "$gpu/dawn.node.tmp" &&
    mv "$gpu/dawn.node.tmp" "$gpu/dawn.node"; }
  export DIFFTX_DAWN_NODE=$gpu/dawn.node
fi

{
  echo "gpu-env: node $(node --version) ($(command -v node))"
  gpus=$(nvidia-smi -L 2>/dev/null || true)
  echo "gpu-env: ${gpus:-nvidia-smi lists no GPU}" | head -1
  echo "gpu-env: Vulkan drivers: ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-as the loader finds them}}"
  echo "gpu-env: dawn.node: ${DIFFTX_DAWN_NODE:-from the webgpu package}"
} >&2
exec "$@"
