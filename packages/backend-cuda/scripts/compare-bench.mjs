#!/usr/bin/env node
// Puts `difftx bench --backend cuda --op diff-attention --json` beside torch_reference.py's JSON:
// per T, both times, both TFLOP/s (6·T²·d·H) and the ratio torch ms / ours ms (≥ 1: ours is faster).
// Usage: node compare-bench.mjs bench-cuda.json bench-torch.json [summary.json] > summary.md
import { readFileSync, writeFileSync } from 'node:fs';

const [oursFile, torchFile, jsonOut] = process.argv.slice(2);
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
process.stdout.write(`${lines.join('\n')}\n`);
if (jsonOut)
  writeFileSync(
    jsonOut,
    `${JSON.stringify(
      {
        ours: { device: ours.device },
        torch: { version: torch.torch, cudnn: torch.cudnn, device: torch.device },
        rows,
      },
      null,
      2,
    )}\n`,
  );
