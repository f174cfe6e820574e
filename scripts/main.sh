#!/usr/bin/env bash
# The main job: install everything, build, and run the conformance suite on every backend.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
node apps/cli/dist/difftx.js conformance --backend all "$@"
