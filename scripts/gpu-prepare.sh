#!/usr/bin/env bash
# Prepares a self-contained bundle of every GPU check, for a Linux x64 machine with an NVIDIA GPU and its
# driver that has neither this repository's node_modules nor, possibly, Node.js or the Vulkan loader.
# Run it on the development machine (Node.js 20, pnpm, the CUDA toolkit for the addon; apt-get to fetch
# the Vulkan loader), from anywhere in the checkout:
#   bash scripts/gpu-prepare.sh [--tar FILE]
# It builds (pnpm build) and fills these paths, all ignored by git:
#   apps/cli/dist/                  difftx.js: the CLI with every workspace package bundled in
#   packages/backend-cuda/prebuilds/  the CUDA addon (built by pnpm build with DIFFTX_BUILD_CUDA=1)
#   packages/backend-cuda/dist-gpu/   gpu-check.js: the CUDA package's own GPU checks, bundled
#   .gpu/                           dawn.node.xz (Dawn, for WebGPU in Node), node.xz (this machine's
#                                   Node.js) and debs/ (the Vulkan loader and libglvnd, which NVIDIA's
#                                   Vulkan driver loads through); scripts/gpu-env.sh uses each only where
#                                   the GPU machine lacks it
# Copy the checkout with those paths to the GPU machine (--tar FILE writes them, with every tracked
# file, into one archive), then run there, from its root:
#   bash scripts/gpu-env.sh bash scripts/gpu-session.sh
# DIFFTX_GPU_NO_NODE=1 skips packing Node.js, DIFFTX_GPU_NO_VULKAN=1 the Vulkan loader.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
tarball=""
if [ "${1:-}" = "--tar" ]; then
  [ -n "${2:-}" ] || { echo "gpu-prepare: --tar needs a file name" >&2; exit 2; }
  tarball=$(realpath -m "$2")
fi

pnpm install --frozen-lockfile >/dev/null
# The development machine has no GPU: build the CUDA addon for the one that has.
DIFFTX_BUILD_CUDA=1 pnpm build >/dev/null
pnpm --filter @diff-transformer/backend-cuda gpu:bundle
mkdir -p .gpu

# Dawn's Node binding from the `webgpu` package, compressed (about 21 MB → a few); gpu-env.sh unpacks it.
dawn=$(node -e "const p=require('path');const r=require.resolve('webgpu',{paths:['apps/cli']});
process.stdout.write(p.join(p.dirname(r),'dist',process.platform+'-'+process.arch,'dawn.node'))")
[ .gpu/dawn.node.xz -nt "$dawn" ] || xz -T2 -6 -c "$dawn" > .gpu/dawn.node.xz

# This machine's Node.js, stripped and compressed (about 22 MB): it runs on a GPU machine whose glibc is
# at least as new as this one's.
if [ -z "${DIFFTX_GPU_NO_NODE:-}" ] && [ ! -s .gpu/node.xz ]; then
  echo "gpu-prepare: packing $(command -v node) ($(node --version))" >&2
  strip -o .gpu/node.tmp "$(command -v node)"
  xz -T2 -6 -c .gpu/node.tmp > .gpu/node.xz
  rm -f .gpu/node.tmp
fi

# The Vulkan loader, and the GL vendor-neutral dispatch libraries that NVIDIA's Vulkan driver
# (libGLX_nvidia) links against, as Debian packages: unpacked there, never installed.
if [ -z "${DIFFTX_GPU_NO_VULKAN:-}" ] && [ -z "$(ls .gpu/debs/*.deb 2>/dev/null)" ]; then
  mkdir -p .gpu/debs
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists" -oAPT::Sandbox::User=root)
  apt-get "${apt[@]}" update -qq >/dev/null
  (cd .gpu/debs && apt-get "${apt[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 \
    >/dev/null)
  rm -rf "$lists"
fi

paths=(.gpu apps/cli/dist packages/backend-cuda/prebuilds packages/backend-cuda/dist-gpu)
for f in .gpu/dawn.node.xz apps/cli/dist/difftx.js packages/backend-cuda/dist-gpu/gpu-check.js \
  packages/backend-cuda/prebuilds/linux-x64/diff_transformer_cuda.node; do
  [ -e "$f" ] || { echo "gpu-prepare: missing $f (the CUDA addon needs nvcc: see packages/backend-cuda)" >&2; exit 1; }
done
du -sh "${paths[@]}" >&2
if [ -n "$tarball" ]; then
  { git ls-files; find "${paths[@]}" -type f; } | tar czf "$tarball" -T -
  echo "gpu-prepare: wrote $tarball ($(du -h "$tarball" | cut -f1))" >&2
fi
cat >&2 <<'MSG'
Ready. Copy the checkout with .gpu, apps/cli/dist, packages/backend-cuda/prebuilds and
packages/backend-cuda/dist-gpu (or the --tar archive) to the GPU machine and run, from its root:
  bash scripts/gpu-env.sh bash scripts/gpu-session.sh
Every result lands in $OUT (default ./gpu-session-out): summary.txt and gpu-session.tar.gz.
MSG
