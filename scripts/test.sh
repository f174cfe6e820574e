#!/usr/bin/env bash
# Every test: install everything, build, typecheck and lint (seconds, so a type error or a style slip
# fails before minutes of tests), then run each package's vitest suite through turbo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
pnpm typecheck
pnpm lint
pnpm test
