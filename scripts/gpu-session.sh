#!/usr/bin/env bash
# Every GPU check of the project in one run, on a Linux x64 machine with an NVIDIA GPU and its driver
# (CUDA 13.0 or newer), Python 3 with PyTorch (CUDA) for the PyTorch comparison and Hugging Face
# `transformers`, `safetensors` and NumPy for the DiffLlama oracle. From the root of a checkout
# prepared by scripts/gpu-prepare.sh:
#   bash scripts/gpu-env.sh bash scripts/gpu-session.sh
# Three parts, most important first, each under its own time limit so one cannot starve the others
# (≈ 560 s in all, so the whole session fits in ten minutes):
#   cuda      (issue 5) conformance in float32/bfloat16/float16, bench against the PyTorch cuDNN path,
#             the package's GPU checks                         packages/backend-cuda/scripts/gpu-run.sh
#   diffllama (issue 3) the transformers oracle: regenerates a tiny DiffLlamaForCausalLM folder, its
#             float64 logits and greedy ids; then difftx parity on it   tools/parity-fixtures/generate.py
#   webgpu    (issue 4) conformance and bench through Dawn on the real GPU
#                                                              packages/backend-webgpu/scripts/gpu-check.sh
# Results, all under one folder, $OUT (default ./gpu-session-out): summary.txt (each part's exit code,
# time and headline figures) and gpu-session.tar.gz (every file each part wrote). The oracle it
# regenerates is diffllama/oracle/ in the archive; copied to fixtures/diffllama/, it is what
# apps/cli/test/diffllama-oracle.test.ts checks.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${OUT:-$PWD/gpu-session-out}
WORK=$(mktemp -d)
mkdir -p "$RESULTS"
SUMMARY=$WORK/summary.txt
trap 'cp "$SUMMARY" "$RESULTS/summary.txt"; tar czf "$RESULTS/gpu-session.tar.gz" -C "$WORK" .' EXIT

part() { # part NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  local began=$SECONDS
  mkdir -p "$WORK/$name"
  OUT=$WORK/$name timeout "$limit" "$@" > "$WORK/$name/stdout.txt" 2> "$WORK/$name/stderr.txt"
  echo "$name: exit $? in $((SECONDS - began)) s" >> "$SUMMARY"
}

{ date -u; nvidia-smi -L 2>&1 | head -1; node --version; } > "$SUMMARY"
part cuda 330 bash packages/backend-cuda/scripts/gpu-run.sh
part diffllama 60 bash -c 'python3 tools/parity-fixtures/generate.py diffllama --out "$OUT/oracle" &&
  node apps/cli/dist/difftx.js parity "$OUT"/oracle/* --json > "$OUT/parity.json"'
part webgpu 170 env DIFFTX_GPU_READY=1 bash packages/backend-webgpu/scripts/gpu-check.sh

{
  echo; echo '== cuda'; tar xzf "$WORK/cuda/cuda-results.tar.gz" -O ./summary.md 2>/dev/null || cat "$WORK/cuda/summary.md" 2>/dev/null
  for d in float32 bfloat16 float16; do
    node -e "const r=JSON.parse(require('fs').readFileSync(0,'utf8'));console.log('conformance $d', JSON.stringify(r.summary))" \
      < <(tar xzf "$WORK/cuda/cuda-results.tar.gz" -O "./conformance-$d.json" 2>/dev/null) 2>/dev/null || echo "conformance $d: no report"
  done
  echo; echo '== diffllama'; tail -3 "$WORK/diffllama/stderr.txt" 2>/dev/null
  node -e "const r=require('$WORK/diffllama/parity.json');console.log(JSON.stringify(r).slice(0,2000))" 2>/dev/null || echo 'no parity report'
  echo; echo '== webgpu'; cat "$WORK/webgpu/summary.txt" 2>/dev/null
} >> "$SUMMARY"
cat "$SUMMARY"
