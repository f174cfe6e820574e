#!/usr/bin/env bash
# Run HERE before a session's one device call: packs Node.js, the Vulkan loader and dawn.node into
# .gpu/ (ignored), builds the bundled CLI, the CUDA addon and the bundled CUDA checks. Then prints the
# call to make. Everything a GPU session must check runs in that one call (scripts/gpu-session.sh).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
bash packages/backend-cuda/scripts/gpu-prepare.sh 2>&1 | grep -v '^  \(carry\|command\):' >&2 || true
bash packages/backend-webgpu/scripts/gpu-prepare.sh
for f in .gpu/on-gpu.sh .gpu/dawn.node.xz apps/cli/dist/difftx.js packages/backend-cuda/prebuilds/linux-x64/diff_transformer_cuda.node packages/backend-cuda/dist-gpu/gpu-check.js; do
  [ -e "$f" ] || { echo "gpu-prepare: missing $f" >&2; exit 1; }
done
cat >&2 <<'MSG'
Ready. Make ONE device call (timeout_s 600):
  carry:   [".gpu", "apps/cli/dist", "packages/backend-cuda/prebuilds", "packages/backend-cuda/dist-gpu"]
  command: bash .gpu/on-gpu.sh bash scripts/gpu-session.sh
It returns $OUT/summary.txt and $OUT/gpu-session.tar.gz (every result file).
MSG
