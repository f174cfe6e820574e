#!/usr/bin/env bash
# Every test: install everything, build, then run each package's vitest suite through turbo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
pnpm test
