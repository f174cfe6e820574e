#!/usr/bin/env bash
# Every test: install everything, build, typecheck, lint and check the release plan (seconds, so a type
# error, a style slip or a planned 1.0.0 fails before minutes of tests), then run each package's vitest
# suite through turbo.
set -euo pipefail
cd "$(dirname "$0")/.."
# The CUDA addon is built even without a GPU: its loader, errors and packaging are tested here.
export DIFFTX_BUILD_CUDA=1
source scripts/setup.sh
pnpm typecheck
pnpm lint
pnpm check-release
pnpm test
