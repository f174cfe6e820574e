#!/usr/bin/env bash
# Every CUDA check, in one run on a machine with an NVIDIA GPU (its driver for CUDA 13.0 or newer;
# Python 3 with PyTorch for the comparison), from the root of a checkout prepared by
# scripts/gpu-prepare.sh (scripts/gpu-session.sh runs it with the other GPU checks):
#   bash scripts/gpu-env.sh bash packages/backend-cuda/scripts/gpu-run.sh
# Writes, packed into $OUT/cuda-results.tar.gz (default ./gpu-out) with summary.md and status.txt
# also beside it:
#   env.txt                     node, GPU, driver
#   info.json                   difftx info --json (cuda must be available)
#   bench-cuda.json, .log       difftx bench --backend cuda --op diff-attention, T = 2048, 8192, 32768,
#                               16 heads, d = 64, causal, batch 1, bfloat16
#   bench-torch.json, .log      the PyTorch reference (two cuDNN SDPA calls, subtraction, RMSNorm), CUDA events
#   summary.md, summary.json    both, TFLOP/s and the ratio
#   conformance-<dtype>.json    difftx conformance --backend cuda --json for float32, bfloat16, float16 (+ .log)
#   gpu-check.json, .log        the package's own GPU checks (tensor-core kernel at larger sizes, decode,
#                               matmul layouts, out of memory, leaks)
#   status.txt                  the exit code of every step
# Each step has its own time limit, so one slow or failing step cannot cost the others.
set -uo pipefail
cd "$(dirname "$0")/../../.."
# A few files in $OUT are easier to bring back than many: everything is written to a work folder, then
# summary.md and status.txt are copied to $OUT and the rest packed into $OUT/cuda-results.tar.gz.
RESULTS=${OUT:-$PWD/gpu-out}
OUT=$(mktemp -d)
mkdir -p "$RESULTS"
trap 'cp "$OUT/summary.md" "$OUT/status.txt" "$RESULTS/" 2>/dev/null; tar czf "$RESULTS/cuda-results.tar.gz" -C "$OUT" .' EXIT
export DIFFTX_CUDA_ADDON=$PWD/packages/backend-cuda/prebuilds/linux-x64/diff_transformer_cuda.node
CLI="node apps/cli/dist/difftx.js"
: > "$OUT/status.txt"
step() { # name, seconds, command...
  local name=$1 limit=$2; shift 2
  local began=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  echo "$name rc=$rc $((SECONDS - began))s" | tee -a "$OUT/status.txt" >&2
}

{ node --version; nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } > "$OUT/env.txt" 2>&1
step info 60 bash -c "$CLI info --json > '$OUT/info.json' 2> '$OUT/info.log'"
step bench-cuda 240 bash -c "$CLI bench --backend cuda --op diff-attention --shape 1,2048,16,64 --shape 1,8192,16,64 --shape 1,32768,16,64 --dtype bfloat16 --repeat 10 --json > '$OUT/bench-cuda.json' 2> '$OUT/bench-cuda.log'"
step bench-torch 240 bash -c "python3 packages/backend-cuda/scripts/torch_reference.py --json '$OUT/bench-torch.json' > /dev/null 2> '$OUT/bench-torch.log'"
step summary 30 bash -c "node packages/backend-cuda/scripts/compare-bench.mjs '$OUT/bench-cuda.json' '$OUT/bench-torch.json' '$OUT/summary.json' > '$OUT/summary.md'"
for dtype in float32 bfloat16 float16; do
  step "conformance-$dtype" 240 bash -c "$CLI conformance --backend cuda --dtype $dtype --json > '$OUT/conformance-$dtype.json' 2> '$OUT/conformance-$dtype.log'"
done
step gpu-check 300 bash -c "node packages/backend-cuda/dist-gpu/gpu-check.js --json '$OUT/gpu-check.json' 2> '$OUT/gpu-check.log'"
cat "$OUT/summary.md" "$OUT/status.txt" 2>/dev/null
for dtype in float32 bfloat16 float16; do
  node -e "const r=require('$OUT/conformance-$dtype.json'); console.log('conformance $dtype:', JSON.stringify(r.summary))" 2>/dev/null || echo "conformance $dtype: no report"
done
tail -1 "$OUT/gpu-check.log" 2>/dev/null
