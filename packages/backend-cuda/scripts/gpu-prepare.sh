#!/usr/bin/env bash
# Prepares, on the development machine, everything gpu-run.sh needs on the GPU machine: Node.js and the
# loaders in .gpu/ (the shared prepare.sh), the bundled CLI, the compiled addon and the bundled GPU checks.
# Then prints the one device call to make. Run from anywhere in the checkout.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
bash ../shared/gpu/prepare.sh
pnpm install --frozen-lockfile
pnpm build
(cd packages/backend-cuda && node scripts/gpu-bundle.mjs)
for f in apps/cli/dist/difftx.js packages/backend-cuda/prebuilds/linux-x64/diff_transformer_cuda.node packages/backend-cuda/dist-gpu/gpu-check.js .gpu/on-gpu.sh; do
  [ -e "$f" ] || { echo "gpu-prepare: missing $f" >&2; exit 1; }
done
du -sh .gpu apps/cli/dist packages/backend-cuda/prebuilds packages/backend-cuda/dist-gpu >&2
cat >&2 <<'MSG'
Ready. Make one device call (timeout_s 600) with
  carry:   [".gpu", "apps/cli/dist", "packages/backend-cuda/prebuilds", "packages/backend-cuda/dist-gpu"]
  command: bash .gpu/on-gpu.sh bash packages/backend-cuda/scripts/gpu-run.sh
Results come back under $OUT: summary.md, bench-*.json, conformance-*.json, gpu-check.json, status.txt.
MSG
