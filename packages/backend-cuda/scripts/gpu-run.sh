#!/usr/bin/env bash
# The CUDA steps of scripts/gpu-session.sh alone (conformance in three dtypes, the benchmarks beside PyTorch,
# the package's GPU checks, the training kernels' timings), under the same budgets, from the root of a
# checkout prepared by scripts/gpu-prepare.sh:
#   bash scripts/gpu-env.sh bash packages/backend-cuda/scripts/gpu-run.sh
# Results as gpu-session.sh writes them, under $OUT (default ./gpu-session-out): summary.txt and
# gpu-session.tar.gz.
exec bash "$(dirname "$0")/../../../scripts/gpu-session.sh" --only cuda "$@"
