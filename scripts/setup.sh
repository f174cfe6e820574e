#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian/Ubuntu machine with Node.js 20+, then builds.
# Safe to run again. Used by scripts/main.sh, scripts/test.sh and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")

# System packages. WebGPU without a GPU: Dawn (Node) and headless Chromium run on SwiftShader, whose
# Vulkan ICD ships with Debian's chromium; Dawn also needs the Vulkan loader (libvulkan1). clang-16 and
# lld-16 compile backend-cpu's WebAssembly kernels; the build uses the committed binaries, and a test
# checks that the compiler reproduces them. g++ compiles backend-cpu's native engine (its addons).
# python3-onnx is ONNX's own checker, which the ONNX export's tests run on every exported graph.
APT_PACKAGES=(chromium libvulkan1 clang-16 lld-16 g++ python3-onnx)
if [ ${#APT_PACKAGES[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# The pinned pnpm (package.json "packageManager"). Installed into the repository's ignored .tools/
# when the one on PATH differs, so no global (root) install is needed.
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  if [ "$(.tools/node_modules/.bin/pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
    echo "setup: installing pnpm $PNPM_VERSION into .tools/" >&2
    npm install --silent --no-save --prefix .tools "pnpm@$PNPM_VERSION" >/dev/null
  fi
  export PATH="$PWD/.tools/node_modules/.bin:$PATH"
fi

pnpm install --frozen-lockfile
pnpm build
