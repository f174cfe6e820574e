import type { AttentionKind, Backend, DType } from '@diff-transformer/core';
import { parseFlags, parseIntegerFlag } from '../args.js';
import { customCpuBackend, resolveBackend } from '../backends.js';
import { measure } from '../bench/measure.js';
import { BENCH_OPS, DEFAULT_SHAPES, DTYPE_OPS, makeWorkload, shapeDims, type BenchOp } from '../bench/workloads.js';
import { UsageError } from '../errors.js';
import { progress, table, writeJson, writeLine } from '../io.js';

const diffAttentionDefault = DEFAULT_SHAPES['diff-attention'];

export const benchHelp =
  'difftx bench [--backend NAME] [--op OP] [--shape S]... [--dtype DTYPE] [--attention KIND] [--runs N] ' +
  `[--repeat N] [--threads N] [--engine E] [--json]

Times kernels and the model on one backend: the median of repeated runs after two warm-up runs
(at least --runs runs, default 5, and at least one second). Without --op, every op runs at its
default shape. --shape may be given several times.

  --op matmul          --shape MxNxK      a [M,K] · b [K,N], float32          default ${DEFAULT_SHAPES.matmul}
  --op diff-attention  --shape B,T,H,d    fused differential attention, causal: B batch, T tokens,
                                          H heads, d the half-head width (q,k: 2H half-heads of d,
                                          v: H heads of 2d), fused per-head RMSNorm
                                                                              default ${diffAttentionDefault}
  --op attention       --shape B,T,H,d    the matched baseline: standard causal attention with 2H
                                          heads of width d                    default ${DEFAULT_SHAPES.attention}
  --op forward         --shape B,T        full forward of a ~21M-parameter model (vocab 8192,
                                          d_model 512, 4 layers, SwiGLU 1408) on B×T tokens
                                                                              default ${DEFAULT_SHAPES.forward}
  --op decode          --shape B,T        one KV-cache decode step per sequence at context T
                                                                              default ${DEFAULT_SHAPES.decode}
  --attention KIND     model variant for forward/decode: differential (default), standard,
                       differential-v2
  --dtype DTYPE        storage dtype of the inputs of matmul, diff-attention and attention:
                       float32 (default), float16 or bfloat16 (the model ops run in float32)
  --repeat N           runs enqueued back to back per timed sample, the time divided by N
                       (default 1); on a GPU this hides the wait for the device, as timing a
                       loop between two CUDA events does
  --threads N          cpu backend only: run kernels on N threads (default: every hardware thread)
  --engine E           cpu backend only: wasm-relaxed-simd, wasm-simd128 or typescript (default: the
                       best this JavaScript engine runs)

FLOPs counted (gflops = FLOPs / median time):
  matmul          2·M·N·K
  diff-attention  6·B·T²·d·H   (two maps; Q·Kᵀ over d, P·V over 2d; causal halves the pairs)
  attention       4·B·T²·d·H   (2H heads; Q·Kᵀ and P·V over d; causal)
  forward         2·(parameters of every matrix multiply, LM head included)·B·T + per-layer attention
tokensPerSecond: B·T / median time for the attention ops and forward, B / median time for decode.

With --json, stdout is {"backend", "device", "results": [{"op", "shape", "medianMs", "runs",
"gflops"?, "tokensPerSecond"?}]}.`;

export async function bench(args: string[]): Promise<number> {
  const { values } = parseFlags('bench', args, {
    backend: { type: 'string' },
    op: { type: 'string' },
    shape: { type: 'string', multiple: true },
    attention: { type: 'string' },
    runs: { type: 'string' },
    repeat: { type: 'string' },
    dtype: { type: 'string' },
    threads: { type: 'string' },
    engine: { type: 'string' },
    json: { type: 'boolean' },
  });
  const op = values.op as BenchOp | undefined;
  if (op !== undefined && !BENCH_OPS.includes(op)) {
    throw new UsageError(`--op: expected one of ${BENCH_OPS.join(', ')}, got ${JSON.stringify(values.op)}`);
  }
  if (values.shape && op === undefined) throw new UsageError('--shape needs --op');
  const attention = (values.attention ?? 'differential') as AttentionKind;
  if (!['differential', 'standard', 'differential-v2'].includes(attention)) {
    throw new UsageError(
      `--attention: expected differential, standard or differential-v2, got ${JSON.stringify(values.attention)}`,
    );
  }
  const minRuns = parseIntegerFlag('runs', values.runs, 5, 1);
  const repeat = parseIntegerFlag('repeat', values.repeat, 1, 1);
  const dtype = (values.dtype ?? 'float32') as DType;
  if (!['float32', 'float16', 'bfloat16'].includes(dtype)) {
    throw new UsageError(`--dtype: expected float32, float16 or bfloat16, got ${JSON.stringify(values.dtype)}`);
  }
  if (dtype !== 'float32' && (op === undefined || !DTYPE_OPS.includes(op))) {
    throw new UsageError(`--dtype ${dtype} needs --op ${DTYPE_OPS.join(' | ')} (the model ops run in float32)`);
  }
  const threads = values.threads === undefined ? undefined : parseIntegerFlag('threads', values.threads, 1, 1);
  const custom = threads !== undefined || values.engine !== undefined;
  if (custom && values.backend !== 'cpu')
    throw new UsageError('--threads and --engine apply to the cpu backend: add --backend cpu');
  // Every flag is checked before any work starts, so a typo costs nothing.
  const plan = (
    op === undefined
      ? BENCH_OPS.map((o) => ({ op: o, shape: DEFAULT_SHAPES[o] }))
      : (values.shape ?? [DEFAULT_SHAPES[op]]).map((shape) => ({ op, shape }))
  ).map((item) => ({ ...item, dims: shapeDims(item.op, item.shape) }));
  const backend = custom
    ? await customCpuBackend({ threads, engine: values.engine })
    : await resolveBackend(values.backend);
  try {
    return await runPlan(backend, plan, { minRuns, repeat, dtype, attention, json: values.json === true });
  } finally {
    if (custom) await backend.dispose?.();
  }
}

async function runPlan(
  backend: Backend,
  plan: Array<{ op: BenchOp; shape: string; dims: number[] }>,
  options: { minRuns: number; repeat: number; dtype: DType; attention: AttentionKind; json: boolean },
): Promise<number> {
  const { minRuns, repeat, attention } = options;
  const results: Array<{
    op: string;
    shape: string;
    dtype: string;
    medianMs: number;
    runs: number;
    gflops?: number;
    tokensPerSecond?: number;
  }> = [];
  progress(`${backend.name}: ${backend.device}`);
  for (const item of plan) {
    progress(`  ${item.op} ${item.shape} …`);
    const dtype = DTYPE_OPS.includes(item.op) ? options.dtype : 'float32';
    const workload = makeWorkload(item.op, item.dims, backend, attention, dtype);
    try {
      const timing = await measure(backend, workload, { minRuns, repeat });
      const result = {
        op: item.op,
        shape: item.shape,
        dtype,
        medianMs: round(timing.medianMs, 4),
        runs: timing.runs,
        ...(workload.flops !== undefined ? { gflops: round(workload.flops / timing.medianMs / 1e6, 3) } : {}),
        ...(workload.tokens !== undefined
          ? { tokensPerSecond: round((workload.tokens * 1000) / timing.medianMs, 2) }
          : {}),
      };
      results.push(result);
      progress(`    ${result.medianMs} ms${result.gflops !== undefined ? `, ${result.gflops} GFLOP/s` : ''}`);
    } finally {
      workload.dispose();
    }
  }
  if (options.json) {
    writeJson({ backend: backend.name, device: backend.device, results });
  } else {
    writeLine(`${backend.name}: ${backend.device}`);
    writeLine(
      table(
        ['op', 'shape', 'dtype', 'median ms', 'GFLOP/s', 'tokens/s', 'runs'],
        results.map((r) => [
          r.op,
          r.shape,
          r.dtype,
          String(r.medianMs),
          r.gflops?.toString() ?? '',
          r.tokensPerSecond?.toString() ?? '',
          String(r.runs),
        ]),
      ),
    );
  }
  return 0;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
