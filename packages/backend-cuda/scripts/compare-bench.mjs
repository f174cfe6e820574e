#!/usr/bin/env node
// Puts `difftx bench --backend cuda --json` beside torch_reference.py's JSON:
//   differential attention: per T, both times, both TFLOP/s (6·T²·d·H) and the ratio torch ms / ours ms
//   matmul (each --matmul file, one `difftx bench --op matmul --dtype D` run): per shape and dtype, ours against
//   torch.matmul (cuBLAS), 2·M·N·K
// A ratio ≥ 1 means ours is faster.
// Usage: node compare-bench.mjs bench-cuda.json bench-torch.json [summary.json] [--matmul FILE]... > summary.md
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const matmulFiles = [];
const positional = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--matmul') matmulFiles.push(args[++i]);
  else positional.push(args[i]);
}
const [oursFile, torchFile, jsonOut] = positional;
const read = (file) => {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    return { error: `${file}: ${error.message}` };
  }
};
const ours = read(oursFile);
const torch = read(torchFile);
const rows = [];
for (const r of ours.results ?? []) {
  const [, tokens, heads, d] = r.shape.split(',').map(Number);
  const reference = (torch.results ?? []).find((t) => t.tokens === tokens && t.heads === heads && t.dim === d);
  const flops = 6 * tokens * tokens * d * heads;
  const best = reference?.best;
  rows.push({
    tokens,
    heads,
    d,
    dtype: r.dtype,
    oursMs: r.medianMs,
    oursTflops: flops / r.medianMs / 1e9,
    torchMs: best?.ms ?? null,
    torchBackend: best?.backend ?? null,
    torchTflops: best ? flops / best.ms / 1e9 : null,
    ratio: best ? best.ms / r.medianMs : null,
  });
}
const matmulRows = [];
for (const file of matmulFiles) {
  const run = read(file);
  for (const r of run.results ?? []) {
    if (r.op !== 'matmul' || r.medianMs === undefined) continue;
    const [m, n, k] = r.shape.split('x').map(Number);
    const reference = (torch.matmul ?? []).find((t) => t.shape === r.shape && t.dtype === r.dtype);
    const flops = 2 * m * n * k;
    matmulRows.push({
      shape: r.shape,
      dtype: r.dtype,
      oursMs: r.medianMs,
      oursTflops: flops / r.medianMs / 1e9,
      torchMs: reference?.ms ?? null,
      torchTflops: reference ? flops / reference.ms / 1e9 : null,
      ratio: reference ? reference.ms / r.medianMs : null,
    });
  }
}
const fmt = (x, digits = 3) => (x === null || x === undefined ? '—' : Number(x).toFixed(digits));
const lines = [
  `Differential attention, batch 1, causal, ${rows[0]?.dtype ?? 'bfloat16'}, FLOPs 6·T²·d·H`,
  `ours: ${ours.device ?? ours.error ?? '?'}; PyTorch ${torch.torch ?? '?'} (cuDNN ${torch.cudnn ?? '?'}) ` +
    `on ${torch.device ?? torch.error ?? '?'}`,
  '',
  '| T | heads | d | ours ms | ours TFLOP/s | PyTorch ms (backend) | PyTorch TFLOP/s | ratio (PyTorch ms / ours ms) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.tokens} | ${r.heads} | ${r.d} | ${fmt(r.oursMs)} | ${fmt(r.oursTflops, 1)} | ` +
      `${fmt(r.torchMs)} (${r.torchBackend ?? '—'}) | ${fmt(r.torchTflops, 1)} | ${fmt(r.ratio, 2)} |`,
  ),
];
if (matmulFiles.length > 0) {
  lines.push(
    '',
    'matmul a [M, K] · b [K, N], FLOPs 2·M·N·K; PyTorch: torch.matmul (cuBLAS), float32 without TF32',
    '',
    '| M×N×K | dtype | ours ms | ours TFLOP/s | cuBLAS ms | cuBLAS TFLOP/s | ratio (cuBLAS ms / ours ms) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...matmulRows.map(
      (r) =>
        `| ${r.shape} | ${r.dtype} | ${fmt(r.oursMs)} | ${fmt(r.oursTflops, 1)} | ${fmt(r.torchMs)} | ` +
        `${fmt(r.torchTflops, 1)} | ${fmt(r.ratio, 2)} |`,
    ),
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
if (jsonOut)
  writeFileSync(
    jsonOut,
    `${JSON.stringify(
      {
        ours: { device: ours.device },
        torch: { version: torch.torch, cudnn: torch.cudnn, device: torch.device },
        rows,
        matmul: matmulRows,
      },
      null,
      2,
    )}\n`,
  );
