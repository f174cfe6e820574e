#!/usr/bin/env python3
"""Float32 matmul of the CPU backend (`difftx bench`) against numpy (OpenBLAS), in one run.

Timings on a shared machine drift with whatever else runs, so the two are measured side by side,
shape by shape: numpy, then difftx, then numpy again; numpy's figure is the median of both batches
(difftx reports the median of its own runs). With --attention the script also runs differential
attention (B = 1, H = 8, d = 64, causal) at T = 1024 and 4096 and gives its GFLOP/s as a fraction
of the backend's own 1024³ matmul from the same run.

Needs a build (`pnpm build`) and python3 with numpy (Debian: apt-get install python3-numpy).

    python3 packages/backend-cpu/scripts/bench-vs-numpy.py                     # 512, 1024, 2048
    python3 packages/backend-cpu/scripts/bench-vs-numpy.py --threads 2 --attention
    # Node 20 runs relaxed SIMD (fused multiply-add) only with this V8 flag:
    python3 packages/backend-cpu/scripts/bench-vs-numpy.py --engine wasm-relaxed-simd \
        --node-arg=--experimental-wasm-relaxed-simd
    # the native engine (the default in Node) on AVX2 only:
    python3 packages/backend-cpu/scripts/bench-vs-numpy.py --isa avx2

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed before numpy loads OpenBLAS, so that it picks its
kernel for this CPU by itself; the kernel it picked (openblas_get_corename) is printed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
DIFFTX = os.path.join(ROOT, "apps", "cli", "dist", "difftx.js")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024,2048", help="square sizes N for N×N×N matmul (default 512,1024,2048)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both (default: every CPU)")
    parser.add_argument("--runs", type=int, default=7, help="numpy runs per batch (default 7)")
    parser.add_argument("--attention", action="store_true", help="also differential attention at T = 1024, 4096")
    parser.add_argument("--node-arg", action="append", default=[], help="an option for node, e.g. --node-arg=--experimental-wasm-relaxed-simd")
    parser.add_argument("--engine", help="difftx bench --engine (default: what the cpu backend picks)")
    parser.add_argument("--isa", help="difftx bench --isa for the native engine (default: the best by CPUID)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    return parser.parse_args()


def numpy_gflops(np, n, runs):
    """Median GFLOP/s of `runs` float32 n×n×n products, after one warm-up."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return [2 * n**3 / t / 1e9 for t in times]


CHILD_ENV = dict(os.environ)


def difftx(op, shape, threads, node_args, extra=()):
    """One `difftx bench` result for op at shape (JSON), and the command that gave it."""
    command = ["node", *node_args, DIFFTX, "bench", "--backend", "cpu", "--op", op, "--shape", shape, "--threads", str(threads),
               *extra, "--json"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=CHILD_ENV)
    document = json.loads(out.stdout)
    return {**document["results"][0], "device": document["device"]}, " ".join(command)


def main():
    args = parse_args()
    # OpenBLAS reads its thread count when numpy is imported.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    # Let OpenBLAS choose its own kernel for this CPU: these two would pin it (numpy's figure only).
    os.environ.pop("OPENBLAS_CORETYPE", None)
    os.environ.pop("OPENBLAS_L2_SIZE", None)
    extra = [*(["--engine", args.engine] if args.engine else []), *(["--isa", args.isa] if args.isa else [])]
    try:
        import numpy as np
    except ImportError:
        sys.exit("bench-vs-numpy: numpy is missing (Debian/Ubuntu: apt-get install python3-numpy; or pip install numpy)")
    if not os.path.exists(DIFFTX):
        sys.exit(f"bench-vs-numpy: {DIFFTX} is missing; run pnpm build first")

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        before = numpy_gflops(np, n, args.runs)
        ours, command = difftx("matmul", f"{n}x{n}x{n}", args.threads, args.node_arg, extra)
        after = numpy_gflops(np, n, args.runs)
        reference = statistics.median(before + after)
        rows.append({"op": "matmul", "shape": f"{n}x{n}x{n}", "gflops": ours["gflops"], "numpyGflops": round(reference, 3),
                     "ratio": round(ours["gflops"] / reference, 3), "command": command})

    if args.attention:
        base = next((r for r in rows if r["shape"] == "1024x1024x1024"), None)
        if base is None:
            ours, command = difftx("matmul", "1024x1024x1024", args.threads, args.node_arg, extra)
            base = {"gflops": ours["gflops"]}
        for t in (1024, 4096):
            ours, command = difftx("diff-attention", f"1,{t},8,64", args.threads, args.node_arg, extra)
            rows.append({"op": "diff-attention", "shape": f"1,{t},8,64", "gflops": ours["gflops"], "tokensPerSecond": ours["tokensPerSecond"],
                         "ratioToMatmul1024": round(ours["gflops"] / base["gflops"], 3), "command": command})

    import numpy
    config = {"threads": args.threads, "device": ours["device"], "numpy": numpy.__version__, "blas": blas_name(numpy),
              "openblasCore": openblas_core(numpy)}
    if args.json:
        print(json.dumps({**config, "results": rows}, indent=2))
        return
    print(f"difftx: {config['device']}; numpy {config['numpy']} ({config['blas']}, kernel {config['openblasCore']}, "
          f"{args.threads} threads)")
    for r in rows:
        if r["op"] == "matmul":
            print(f"  matmul {r['shape']:>15}  difftx {r['gflops']:8.1f} GFLOP/s  numpy {r['numpyGflops']:8.1f} GFLOP/s  ratio {r['ratio']:.2f}")
        else:
            print(f"  diff-attention {r['shape']:>10}  {r['gflops']:8.1f} GFLOP/s  {r['tokensPerSecond']:9.1f} tokens/s  "
                  f"{r['ratioToMatmul1024']:.2f} of the 1024³ matmul")


def blas_name(numpy):
    """The BLAS numpy was built against, as numpy reports it (e.g. openblas64)."""
    try:
        info = numpy.show_config(mode="dicts")
        return info["Build Dependencies"]["blas"]["name"]
    except Exception:  # older numpy: no dict mode
        return "BLAS"


def openblas_core(numpy):
    """The kernel OpenBLAS picked for this CPU (openblas_get_corename), or 'unknown'."""
    import ctypes
    import glob
    here = os.path.dirname(numpy.__file__)
    for path in glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*")) + glob.glob(os.path.join(here, ".dylibs", "*openblas*")):
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
                     "openblas_get_corename"):
            function = getattr(library, name, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                return function().decode()
    return "unknown"


if __name__ == "__main__":
    main()
