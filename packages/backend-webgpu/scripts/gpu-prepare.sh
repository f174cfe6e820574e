#!/usr/bin/env bash
# Run HERE (not on the GPU machine), from anywhere in the checkout, before a GPU run:
#   bash packages/backend-webgpu/scripts/gpu-prepare.sh
# Packs what the GPU machine lacks into .gpu/ (ignored by git): Node.js and the Vulkan loader
# (../shared/gpu/prepare.sh), and dawn.node from the `webgpu` package. Builds the bundled CLI
# (apps/cli/dist/difftx.js, which needs no node_modules). Then call the device tool with
#   carry: [".gpu", "apps/cli/dist"]
#   command: bash packages/backend-webgpu/scripts/gpu-check.sh
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
shared=${DIFFTX_SHARED:-"$root/../shared"}
[ -d "$shared/gpu" ] || shared="$root/shared"
bash "$shared/gpu/prepare.sh"
pnpm install --frozen-lockfile >/dev/null
pnpm build >/dev/null
dawn=$(node -e "const p=require('path');const r=require.resolve('webgpu',{paths:['apps/cli']});process.stdout.write(p.join(p.dirname(r),'dist',process.platform+'-'+process.arch,'dawn.node'))")
# Compressed (21 MB → a few MB): the device call carries at most 64 MiB; gpu-check.sh unpacks it.
[ .gpu/dawn.node.xz -nt "$dawn" ] || xz -T2 -6 -c "$dawn" > .gpu/dawn.node.xz
du -sh .gpu apps/cli/dist >&2
