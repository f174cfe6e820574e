#!/usr/bin/env bash
# Runs ON the GPU machine, from the project root, in one call (see gpu-prepare.sh for what travels):
#   bash packages/backend-webgpu/scripts/gpu-check.sh
# Checks the WebGPU backend through the bundled CLI and Dawn (dawn.node) on the real GPU, and writes
# every result to $OUT (default ./gpu-results):
#   info.json                 the backends and the adapter
#   conformance.json (.log)   difftx conformance --backend webgpu --json: every case
#   bench-matmul.json         matmul 2048³ and 4096³, float32
#   bench-diff-attention.json differential attention, causal, B 1, 16 heads, d 64, T = 1024, 4096, 16384
#   bench-attention.json      the matched standard attention (32 heads of 64) at the same T
#   bench-forward.json        a forward pass of the ~21M-parameter bench model, B 1, T 512
#   bench-decode.json         one KV-cache decode step at context 4000
#   summary.txt               the figures, one line each
# Each step has its own time limit (510 s in all, under the 10-minute limit of one device call), and a
# failing step does not stop the others.
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$OUT"
CLI=${DIFFTX_CLI:-apps/cli/dist/difftx.js}

# Node and the NVIDIA Vulkan driver: through ../shared/gpu/on-gpu.sh (packed into .gpu/ by prepare.sh).
if [ -z "${DIFFTX_GPU_READY:-}" ] && [ -x .gpu/on-gpu.sh ]; then
  export DIFFTX_GPU_READY=1
  exec bash .gpu/on-gpu.sh bash "$0" "$@"
fi
if [ -z "${DIFFTX_DAWN_NODE:-}" ] && [ -f .gpu/dawn.node.xz ]; then
  xz -d -c .gpu/dawn.node.xz > /tmp/dawn.node && export DIFFTX_DAWN_NODE=/tmp/dawn.node
fi
if [ -z "${DIFFTX_DAWN_NODE:-}" ]; then
  for candidate in .gpu/dawn.node "$(dirname "$CLI")/dawn.node"; do
    if [ -f "$candidate" ]; then export DIFFTX_DAWN_NODE=$PWD/$candidate; break; fi
  done
fi
echo "node $(node --version); dawn.node: ${DIFFTX_DAWN_NODE:-from the webgpu package}" | tee "$OUT/summary.txt"

step() { # step NAME SECONDS ARGS... : difftx ARGS > $OUT/NAME.json, stderr to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" node "$CLI" "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
  local code=$?
  echo "$name: exit $code in $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
}

# DIFFTX_GPU_CHECK_QUICK=1: tiny shapes, to rehearse the script on a machine without a GPU.
if [ -n "${DIFFTX_GPU_CHECK_QUICK:-}" ]; then
  MATMUL=(--shape 128x128x128); ATTENTION=(--shape 1,64,2,16); FORWARD=1,16; DECODE=1,32; FILTER=(--filter '^(matmul|add)/')
else
  MATMUL=(--shape 2048x2048x2048 --shape 4096x4096x4096)
  ATTENTION=(--shape 1,1024,16,64 --shape 1,4096,16,64 --shape 1,16384,16,64)
  FORWARD=1,512; DECODE=1,4000; FILTER=()
fi

step info 30 info --json
step conformance 180 conformance --backend webgpu "${FILTER[@]}" --json
step bench-matmul 60 bench --backend webgpu --op matmul "${MATMUL[@]}" --json
step bench-diff-attention 90 bench --backend webgpu --op diff-attention "${ATTENTION[@]}" --json
step bench-attention 60 bench --backend webgpu --op attention "${ATTENTION[@]}" --json
step bench-forward 45 bench --backend webgpu --op forward --shape "$FORWARD" --json
step bench-decode 45 bench --backend webgpu --op decode --shape "$DECODE" --json

node -e '
const fs = require("fs"), out = process.argv[1];
const read = (n) => { try { return JSON.parse(fs.readFileSync(`${out}/${n}.json`, "utf8")); } catch { return null; } };
const lines = [];
const c = read("conformance");
if (c) lines.push(`conformance on ${c.device}: ${JSON.stringify(c.summary)}` + c.cases.filter((x) => x.status !== "pass").map((x) => `\n  ${x.status} ${x.name}: ${x.message}`).join(""));
for (const n of ["bench-matmul", "bench-diff-attention", "bench-attention", "bench-forward", "bench-decode"]) {
  const b = read(n);
  for (const r of b?.results ?? []) lines.push(`${r.op} ${r.shape}: ${r.medianMs} ms${r.gflops ? `, ${r.gflops} GFLOP/s` : ""}${r.tokensPerSecond ? `, ${r.tokensPerSecond} tokens/s` : ""}`);
}
fs.appendFileSync(`${out}/summary.txt`, lines.join("\n") + "\n");
' "$OUT"
cat "$OUT/summary.txt"
