#!/usr/bin/env bash
# Runs on a machine with a GPU and its Vulkan driver, from the root of a checkout prepared by
# scripts/gpu-prepare.sh (scripts/gpu-session.sh runs it with the other GPU checks):
#   bash packages/backend-webgpu/scripts/gpu-check.sh
# Checks the WebGPU backend through the bundled CLI and Dawn (dawn.node) on the real GPU, and writes
# every result to $OUT (default ./gpu-results), in five files:
#   info.json          the backends and the adapter
#   conformance.json   difftx conformance --backend webgpu --json: every case
#   bench.json         {step: difftx bench --json} for
#                        matmul        2048³ and 4096³, float32 (and matmul-scalar-tile: the same
#                                      with DIFFTX_WEBGPU_LARGE_TILE=large)
#                        diff-attention causal, B 1, 16 heads, d 64, T = 1024, 4096, 16384
#                        attention     the matched standard attention (32 heads of 64) at the same T
#                        forward       the ~21M-parameter bench model, B 1, T 512
#                        decode        one KV-cache decode step at context 4000
#   log.txt            every step's stderr (progress, errors)
#   summary.txt        exit code and time of each step, then the figures, one line each
# Each step has its own time limit (530 s in all), and a failing step does not stop the others.
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$OUT"
CLI=${DIFFTX_CLI:-apps/cli/dist/difftx.js}

# Node, the Vulkan loader, the NVIDIA Vulkan driver and dawn.node: through scripts/gpu-env.sh, which
# uses what scripts/gpu-prepare.sh packed into .gpu/ where the machine lacks it.
if [ -z "${DIFFTX_GPU_READY:-}" ] && [ -d .gpu ]; then
  exec bash scripts/gpu-env.sh bash "$0" "$@"
fi
if [ -z "${DIFFTX_DAWN_NODE:-}" ]; then
  for candidate in .gpu/dawn.node "$(dirname "$CLI")/dawn.node"; do
    if [ -f "$candidate" ]; then export DIFFTX_DAWN_NODE=$PWD/$candidate; break; fi
  done
fi
echo "node $(node --version); dawn.node: ${DIFFTX_DAWN_NODE:-from the webgpu package}" | tee "$OUT/summary.txt"

parts=$(mktemp -d)
step() { # step NAME SECONDS ARGS... : difftx ARGS > NAME.json, stderr appended to $OUT/log.txt
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "== $name: difftx $*" >> "$OUT/log.txt"
  timeout "$limit" node "$CLI" "$@" > "$parts/$name.json" 2>> "$OUT/log.txt"
  local code=$?
  echo "$name: exit $code in $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
}

# DIFFTX_GPU_CHECK_QUICK=1: tiny shapes, to rehearse the script on a machine without a GPU.
if [ -n "${DIFFTX_GPU_CHECK_QUICK:-}" ]; then
  MATMUL=(--shape 128x128x128); ATTENTION=(--shape 1,64,2,16); FORWARD=1,8; DECODE=1,16; FILTER=(--filter '^(matmul|add)/')
else
  MATMUL=(--shape 2048x2048x2048 --shape 4096x4096x4096)
  ATTENTION=(--shape 1,1024,16,64 --shape 1,4096,16,64 --shape 1,16384,16,64)
  FORWARD=1,512; DECODE=1,4000; FILTER=()
fi

step info 30 info --json
step conformance 180 conformance --backend webgpu "${FILTER[@]}" --json
step matmul 60 bench --backend webgpu --op matmul "${MATMUL[@]}" --json
# The same with the scalar 128×128 tile, to choose the default from a real GPU's numbers.
DIFFTX_WEBGPU_LARGE_TILE=large step matmul-scalar-tile 50 bench --backend webgpu --op matmul "${MATMUL[@]}" --json
step diff-attention 90 bench --backend webgpu --op diff-attention "${ATTENTION[@]}" --json
step attention 50 bench --backend webgpu --op attention "${ATTENTION[@]}" --json
step forward 40 bench --backend webgpu --op forward --shape "$FORWARD" --json
step decode 40 bench --backend webgpu --op decode --shape "$DECODE" --json
cp "$parts/info.json" "$parts/conformance.json" "$OUT/" 2>/dev/null

node -e '
const fs = require("fs"), [parts, out] = process.argv.slice(1);
const read = (n) => { try { return JSON.parse(fs.readFileSync(`${parts}/${n}.json`, "utf8")); } catch { return null; } };
const lines = [];
const c = read("conformance");
if (c) lines.push(`conformance on ${c.device}: ${JSON.stringify(c.summary)}` + c.cases.filter((x) => x.status !== "pass").map((x) => `\n  ${x.status} ${x.name}: ${x.message}`).join(""));
const bench = {};
for (const n of ["matmul", "matmul-scalar-tile", "diff-attention", "attention", "forward", "decode"]) {
  const b = (bench[n] = read(n));
  for (const r of b?.results ?? []) lines.push(`${n === r.op ? r.op : `${r.op} (${n})`} ${r.shape}: ${r.medianMs} ms${r.gflops ? `, ${r.gflops} GFLOP/s` : ""}${r.tokensPerSecond ? `, ${r.tokensPerSecond} tokens/s` : ""}`);
}
fs.writeFileSync(`${out}/bench.json`, JSON.stringify(bench, null, 2) + "\n");
fs.appendFileSync(`${out}/summary.txt`, lines.join("\n") + "\n");
console.log(lines.join("\n"));
' "$parts" "$OUT"
rm -rf "$parts"
