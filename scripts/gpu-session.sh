#!/usr/bin/env bash
# Every GPU check of the project in one run, within ten minutes on an H200, on a Linux x64 machine with an
# NVIDIA GPU and its driver (CUDA 13.0 or newer), Python 3 with PyTorch (CUDA) for the PyTorch comparison,
# and Hugging Face `transformers`, `safetensors` and NumPy for the DiffLlama oracle. From the root of a
# checkout prepared by scripts/gpu-prepare.sh:
#   bash scripts/gpu-env.sh bash scripts/gpu-session.sh [--only cuda|webgpu|diffllama]...
#
# The steps, most important first. Each has a planned time (an estimate for an H200, in seconds) and a
# minimum: it runs under min(planned, what is left of the budget), and a step whose minimum no longer fits
# is skipped; summary.txt names every skipped or stopped step and why. DIFFTX_GPU_BUDGET (default 550 s) is
# the whole run's budget; the planned times add up to 543 s.
#   step                       planned  what
#   info                         10     difftx info --json: which backends are available, the GPU, Dawn's adapter
#   cuda-attention               35     difftx bench, diff-attention B1 H16 d64 (V 128) causal bf16, T = 2K, 8K, 32K
#   torch                        55     the PyTorch reference of the same (two SDPA calls per backend — cuDNN,
#                                       flash, efficient — then subtraction and RMSNorm) and torch.matmul (cuBLAS)
#                                       of the matmul shapes below, timed with CUDA events
#   cuda-matmul-bfloat16         15     difftx bench --op matmul: 4096³, 8192³, 1×11008×4096 (decoding's x·Wᵀ)
#   cuda-matmul-float32          15     the same in float32
#   cuda-conformance-bfloat16    45     the conformance suite on cuda, training cases and large cases included,
#   cuda-conformance-float16     35     strict (cuda has every kernel: an unsupported case fails)
#   cuda-conformance-float32     40
#   cuda-checks                  75     packages/backend-cuda/scripts/gpu-checks.ts (bundled): the flash kernel at
#                                       sizes the suite does not reach against float64 and the SIMT kernel, split
#                                       keys, GEMV, large reads and pitches, the training kernels, determinism
#   cuda-diff-attention-backward 20     difftx bench: the training kernels, bf16 B1 T 8K H16 d64 (V 128)
#   cuda-attention-backward      10     the same for standard attention (32 heads of 64)
#   cuda-train-step              10     a whole training step of the ~21M-parameter bench model
#   webgpu-conformance           70     the conformance suite on webgpu through Dawn and NVIDIA's Vulkan driver,
#                                       large cases included
#   webgpu-matmul                15     difftx bench --op matmul: 2048³ and 4096³ float32
#   webgpu-matmul-large-tile     10     the same with DIFFTX_WEBGPU_LARGE_TILE=large (to pick the default tile)
#   webgpu-diff-attention        20     diff-attention B1 H16 d64 causal, T = 1K, 4K, 16K
#   webgpu-attention             12     the matched standard attention (32 heads of 64) at the same T
#   webgpu-forward                8     forward of the bench model, B1 T512
#   webgpu-decode                 8     one decode step at context 4000
#   diffllama                    35     tools/parity-fixtures/generate.py: a tiny DiffLlamaForCausalLM, its
#                                       float64 logits and greedy ids; then difftx parity on it
#
# Results, all under one folder, $OUT (default ./gpu-session-out):
#   summary.txt          every step's exit code and time (or why it was skipped), then the headline figures:
#                        the attention and matmul tables beside PyTorch, conformance summaries and failures
#   gpu-session.tar.gz   every file every step wrote (NAME.json or NAME.txt, NAME.log), summary.txt included;
#                        the oracle is diffllama/oracle/ (copied to fixtures/diffllama/, it is what
#                        apps/cli/test/diffllama-oracle.test.ts checks)
# DIFFTX_GPU_QUICK=1 runs tiny shapes, to rehearse the script on a machine without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${OUT:-$PWD/gpu-session-out}
BUDGET=${DIFFTX_GPU_BUDGET:-550}
WORK=$(mktemp -d)
mkdir -p "$RESULTS"
SUMMARY=$WORK/summary.txt
trap 'cp "$SUMMARY" "$RESULTS/summary.txt"; tar czf "$RESULTS/gpu-session.tar.gz" -C "$WORK" .' EXIT
export DIFFTX_CUDA_ADDON=${DIFFTX_CUDA_ADDON:-$PWD/packages/backend-cuda/prebuilds/linux-x64/diff_transformer_cuda.node}
CLI=(node apps/cli/dist/difftx.js)
TORCH=packages/backend-cuda/scripts/torch_reference.py

only=()
while [ $# -gt 0 ]; do
  case $1 in
    --only) only+=("$2"); shift 2 ;;
    *) echo "gpu-session: unknown argument $1 (expected --only cuda|webgpu|diffllama)" >&2; exit 2 ;;
  esac
done
selected() { [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $1 "* ]]; }

if [ -n "${DIFFTX_GPU_QUICK:-}" ]; then
  ATTENTION=(--shape 1,64,2,16); CUDA_MATMUL=(--shape 64x64x64 --shape 1x96x64); TORCH_TOKENS=64; TORCH_MATMUL=64x64x64
  BACKWARD=1,64,2,16; WEBGPU_MATMUL=(--shape 128x128x128); WEBGPU_ATTENTION=(--shape 1,64,2,16)
  FORWARD=1,8; DECODE=1,16; FILTER=(--filter '^(matmul|add)/')
else
  ATTENTION=(--shape 1,2048,16,64 --shape 1,8192,16,64 --shape 1,32768,16,64)
  CUDA_MATMUL=(--shape 4096x4096x4096 --shape 8192x8192x8192 --shape 1x11008x4096)
  TORCH_TOKENS=2048,8192,32768; TORCH_MATMUL=4096x4096x4096,8192x8192x8192,1x11008x4096
  BACKWARD=1,8192,16,64; WEBGPU_MATMUL=(--shape 2048x2048x2048 --shape 4096x4096x4096)
  WEBGPU_ATTENTION=(--shape 1,1024,16,64 --shape 1,4096,16,64 --shape 1,16384,16,64)
  FORWARD=1,512; DECODE=1,4000; FILTER=(--large)
fi

began=$SECONDS
# step NAME PLANNED MINIMUM COMMAND...: stdout to NAME.json (NAME.txt for a command that prints text, by the
# name's .txt suffix), stderr to NAME.log, one line in summary.txt.
step() {
  local name=$1 planned=$2 minimum=$3; shift 3
  local left=$((BUDGET - (SECONDS - began)))
  local file=$WORK/$name.json
  [[ $name == *.txt ]] && { file=$WORK/$name; name=${name%.txt}; }
  if [ "$left" -lt "$minimum" ]; then
    echo "$name: SKIPPED, ${left} s of the budget left and it needs at least ${minimum} s" | tee -a "$SUMMARY" >&2
    return
  fi
  local limit=$((planned < left ? planned : left))
  local start=$SECONDS
  echo "== $name (limit ${limit} s): $*" >&2
  timeout "$limit" "$@" > "$file" 2> "$WORK/$name.log"
  local rc=$?
  local note=""
  [ "$rc" -eq 124 ] && note=" (STOPPED at its ${limit} s limit: its results are incomplete)"
  echo "$name: exit $rc in $((SECONDS - start)) s$note" | tee -a "$SUMMARY" >&2
}

{ date -u; nvidia-smi -L 2>&1 | head -1; nvidia-smi --query-gpu=driver_version,clocks.max.sm --format=csv,noheader 2>&1;
  node --version; echo "budget ${BUDGET} s"; } > "$SUMMARY"
step info 10 5 "${CLI[@]}" info --json

if selected cuda; then
  step cuda-attention 35 15 "${CLI[@]}" bench --backend cuda --op diff-attention "${ATTENTION[@]}" --dtype bfloat16 \
    --repeat 10 --json
  step torch.txt 55 30 python3 "$TORCH" --tokens "$TORCH_TOKENS" --matmul "$TORCH_MATMUL" \
    --matmul-dtypes bfloat16,float32 --json "$WORK/torch.json"
  for dtype in bfloat16 float32; do
    step "cuda-matmul-$dtype" 15 8 "${CLI[@]}" bench --backend cuda --op matmul "${CUDA_MATMUL[@]}" --dtype "$dtype" \
      --repeat 10 --json
  done
  step cuda-conformance-bfloat16 45 20 "${CLI[@]}" conformance --backend cuda --dtype bfloat16 --strict \
    "${FILTER[@]}" --json
  step cuda-conformance-float16 35 20 "${CLI[@]}" conformance --backend cuda --dtype float16 --strict \
    "${FILTER[@]}" --json
  step cuda-conformance-float32 40 20 "${CLI[@]}" conformance --backend cuda --dtype float32 --strict \
    "${FILTER[@]}" --json
  step cuda-checks.txt 75 30 node packages/backend-cuda/dist-gpu/gpu-check.js --json "$WORK/cuda-checks.json"
  step cuda-diff-attention-backward 20 10 "${CLI[@]}" bench --backend cuda --op diff-attention-backward \
    --shape "$BACKWARD" --dtype bfloat16 --json
  step cuda-attention-backward 10 5 "${CLI[@]}" bench --backend cuda --op attention-backward --shape "$BACKWARD" \
    --dtype bfloat16 --json
  step cuda-train-step 10 5 "${CLI[@]}" bench --backend cuda --op train-step --json
fi

if selected webgpu; then
  step webgpu-conformance 70 30 "${CLI[@]}" conformance --backend webgpu "${FILTER[@]}" --json
  step webgpu-matmul 15 8 "${CLI[@]}" bench --backend webgpu --op matmul "${WEBGPU_MATMUL[@]}" --json
  step webgpu-matmul-large-tile 10 5 env DIFFTX_WEBGPU_LARGE_TILE=large "${CLI[@]}" bench --backend webgpu --op matmul \
    "${WEBGPU_MATMUL[@]}" --json
  step webgpu-diff-attention 20 10 "${CLI[@]}" bench --backend webgpu --op diff-attention "${WEBGPU_ATTENTION[@]}" \
    --json
  step webgpu-attention 12 6 "${CLI[@]}" bench --backend webgpu --op attention "${WEBGPU_ATTENTION[@]}" --json
  step webgpu-forward 8 4 "${CLI[@]}" bench --backend webgpu --op forward --shape "$FORWARD" --json
  step webgpu-decode 8 4 "${CLI[@]}" bench --backend webgpu --op decode --shape "$DECODE" --json
fi

if selected diffllama; then
  mkdir -p "$WORK/diffllama"
  oracle=$WORK/diffllama/oracle
  step diffllama.txt 35 20 bash -c "python3 tools/parity-fixtures/generate.py diffllama --out '$oracle' &&
    ${CLI[*]} parity '$oracle'/* --json > '$WORK/diffllama/parity.json'"
fi

# Headline figures, one block per part that ran.
selected cuda && node packages/backend-cuda/scripts/compare-bench.mjs "$WORK/cuda-attention.json" "$WORK/torch.json" \
  "$WORK/comparison.json" --matmul "$WORK/cuda-matmul-bfloat16.json" --matmul "$WORK/cuda-matmul-float32.json" \
  > "$WORK/comparison.md" 2>> "$WORK/summary.log"
node - "$WORK" "${only[*]:-cuda webgpu diffllama}" >> "$SUMMARY" 2>> "$WORK/summary.log" <<'JS'
const fs = require('fs');
const [work, parts] = process.argv.slice(2);
const ran = (part) => parts.split(' ').includes(part);
const read = (name) => {
  try { return JSON.parse(fs.readFileSync(`${work}/${name}`, 'utf8')); } catch { return null; }
};
const out = [];
const conformance = (name) => {
  const r = read(`${name}.json`);
  if (!r) return out.push(`${name}: no report`);
  out.push(`${name} on ${r.device}: ${JSON.stringify(r.summary)}`);
  for (const c of r.cases.filter((x) => x.status === 'fail'))
    out.push(`  fail ${c.name}: nmse ${c.nmse} > ${c.tolerance}${c.message ? ` (${c.message})` : ''}`);
};
const bench = (name) => {
  for (const r of read(`${name}.json`)?.results ?? [])
    out.push(`${name} ${r.op} ${r.shape} ${r.dtype ?? ''}: ` + (r.medianMs !== undefined
      ? `${r.medianMs} ms` + (r.gflops ? `, ${r.gflops} GFLOP/s` : '') +
        (r.tokensPerSecond ? `, ${r.tokensPerSecond} tokens/s` : '')
      : (r.error ?? r.unsupported ?? JSON.stringify(r))));
};
if (ran('cuda')) {
  out.push('', '== cuda');
  try { out.push(fs.readFileSync(`${work}/comparison.md`, 'utf8').trimEnd()); } catch {}
  for (const d of ['bfloat16', 'float16', 'float32']) conformance(`cuda-conformance-${d}`);
  const checks = read('cuda-checks.json');
  if (checks) {
    const failed = checks.results.filter((r) => !r.pass);
    out.push(`cuda-checks: ${checks.results.length - failed.length} passed, ${failed.length} failed`);
    for (const r of failed)
      out.push(`  FAIL ${r.name}: ${r.detail}${r.nmse !== undefined ? ` (nmse ${r.nmse} > ${r.tolerance})` : ''}`);
  } else out.push('cuda-checks: no report');
  for (const n of ['cuda-diff-attention-backward', 'cuda-attention-backward', 'cuda-train-step']) bench(n);
}
if (ran('webgpu')) {
  out.push('', '== webgpu');
  conformance('webgpu-conformance');
  for (const n of ['webgpu-matmul', 'webgpu-matmul-large-tile', 'webgpu-diff-attention', 'webgpu-attention',
    'webgpu-forward', 'webgpu-decode']) bench(n);
}
if (ran('diffllama')) {
  out.push('', '== diffllama');
  const parity = read('diffllama/parity.json');
  out.push(parity ? JSON.stringify(parity).slice(0, 1500) : 'no parity report');
}
console.log(out.join('\n'));
JS
cat "$SUMMARY"
