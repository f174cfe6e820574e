#!/usr/bin/env python3
"""The reference way of running differential attention in PyTorch, timed with CUDA events.

DIFF Transformer's attention as the official code computes it with a fused-attention library: two
scaled_dot_product_attention calls (map 1: Q1, K1; map 2: Q2, K2; both with V of width 2d), then
attn1 - lambda * attn2, a per-head RMSNorm over 2d with its weight, and the (1 - lambda_init) scale.
Batch 1, causal, bf16, heads H, half-head width d. FLOPs counted as 6 * T^2 * d * H (the causal pair
of maps: Q.K^T over d and P.V over 2d, for two maps, half the pairs), the same count `difftx bench`
uses for `--op diff-attention`.

Every SDPA backend that accepts the shapes is timed; the fastest is the reference ("best").

With --matmul MxNxK,..., also times torch.matmul (cuBLAS) of a [M, K] by b [K, N] in each --matmul-dtypes
(bfloat16, float16, float32; float32 with TF32 off, as torch's default, i.e. the float32 arithmetic
`difftx bench --op matmul` does), FLOPs 2·M·N·K, the numbers `difftx bench --op matmul` is set beside.

Usage: python3 torch_reference.py [--tokens 2048,8192,32768] [--heads 16] [--dim 64]
                                  [--matmul 4096x4096x4096,...] [--matmul-dtypes bfloat16,float32] [--json FILE]
"""
import argparse
import json
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def diff_attention(q1, q2, k1, k2, v, lam, weight, lambda_init, eps=1e-5):
    a1 = F.scaled_dot_product_attention(q1, k1, v, is_causal=True)
    a2 = F.scaled_dot_product_attention(q2, k2, v, is_causal=True)
    attn = a1 - lam * a2
    attn = F.rms_norm(attn, (attn.shape[-1],), weight, eps)
    return attn * (1 - lambda_init)


def time_ms(fn, warmup=5, iters=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", default="2048,8192,32768")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--matmul", default="", help="MxNxK shapes, comma-separated")
    parser.add_argument("--matmul-dtypes", default="bfloat16,float32")
    parser.add_argument("--json")
    args = parser.parse_args()
    heads, d = args.heads, args.dim
    dtype = torch.bfloat16
    device = torch.device("cuda")
    torch.manual_seed(0)
    backends = {
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }
    results = []
    for tokens in [int(t) for t in args.tokens.split(",")]:
        shape = (1, heads, tokens, d)
        q1, q2, k1, k2 = (torch.randn(shape, device=device, dtype=dtype) for _ in range(4))
        v = torch.randn((1, heads, tokens, 2 * d), device=device, dtype=dtype)
        lam = torch.full((1, heads, 1, 1), 0.5, device=device, dtype=dtype)
        weight = torch.ones(2 * d, device=device, dtype=dtype)
        lambda_init = 0.8 - 0.6 * math.exp(-0.3 * 0)
        flops = 6 * tokens * tokens * d * heads
        entry = {"tokens": tokens, "heads": heads, "dim": d, "flops": flops, "backends": {}}
        for name, backend in backends.items():
            try:
                with sdpa_kernel([backend]):
                    ms = time_ms(lambda: diff_attention(q1, q2, k1, k2, v, lam, weight, lambda_init))
                entry["backends"][name] = {"ms": ms, "tflops": flops / ms / 1e9}
            except Exception as error:  # a backend that refuses these shapes is reported, not fatal
                entry["backends"][name] = {"error": str(error).split("\n")[0][:300]}
            print(f"T={tokens} {name}: {entry['backends'][name]}", file=sys.stderr)
        timed = {k: b for k, b in entry["backends"].items() if "ms" in b}
        if timed:
            best = min(timed, key=lambda k: timed[k]["ms"])
            entry["best"] = {"backend": best, **timed[best]}
        results.append(entry)
        del q1, q2, k1, k2, v
        torch.cuda.empty_cache()
    matmul = []
    torch.backends.cuda.matmul.allow_tf32 = False
    for shape in [x for x in args.matmul.split(",") if x]:
        m, n, k = (int(x) for x in shape.split("x"))
        for name in args.matmul_dtypes.split(","):
            kind = getattr(torch, name)
            a = torch.randn((m, k), device=device, dtype=kind)
            b = torch.randn((k, n), device=device, dtype=kind)
            ms = time_ms(lambda: torch.matmul(a, b))
            entry = {"shape": shape, "dtype": name, "ms": ms, "tflops": 2 * m * n * k / ms / 1e9}
            print(f"matmul {shape} {name}: {entry}", file=sys.stderr)
            matmul.append(entry)
            del a, b
        torch.cuda.empty_cache()
    doc = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "dtype": "bfloat16",
        "results": results,
        "matmul": matmul,
    }
    text = json.dumps(doc, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
