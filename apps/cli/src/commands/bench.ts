import {
  UnsupportedKernelError,
  type AttentionKind,
  type Backend,
  type DType,
  type ModelConfigInput,
} from '@diff-transformer/core';
import type { CpuBackend } from '@diff-transformer/backend-cpu';
import { presetModelConfig } from '@diff-transformer/train';
import { resolvePreset } from '@diff-transformer/train/node';
import { parseFlags, parseIntegerFlag } from '../args.js';
import { customCpuBackend, resolveBackend } from '../backends.js';
import { measureSideBySide, type Timing } from '../bench/measure.js';
import {
  BENCH_OPS,
  DEFAULT_SHAPES,
  DTYPE_OPS,
  FLOP_COUNTS,
  makeWorkload,
  shapeDims,
  type BenchOp,
  type RunOutput,
  type Workload,
} from '../bench/workloads.js';
import { UsageError } from '../errors.js';
import { progress, table, writeJson, writeLine } from '../io.js';

const diffAttentionDefault = DEFAULT_SHAPES['diff-attention'];
const diffBackwardDefault = DEFAULT_SHAPES['diff-attention-backward'];
const backwardDefault = DEFAULT_SHAPES['attention-backward'];

/** The vocabulary of difftx train's default (byte) tokenizer. */
const BYTE_VOCABULARY = 256;

export const benchHelp =
  'difftx bench [--backend NAME] [--op OP]... [--shape S]... [--dtype DTYPE] [--attention KIND] [--size SIZE] ' +
  `[--runs N] [--repeat N] [--threads N] [--engine E] [--isa I] [--json]

Times kernels and the model on one backend, side by side: every op and shape is set up first, then
each round runs each of them once, after two warm-up rounds (at least --runs rounds, default 5, and
at least one second); each reports the median of its runs and their spread (fastest, slowest).
Without --op, every op runs at its default shape; --op may be given several times (default shapes),
--shape several times for one --op. An op whose kernels the backend lacks is reported unsupported.

  --op matmul          --shape MxNxK      a [M,K] · b [K,N], float32          default ${DEFAULT_SHAPES.matmul}
  --op diff-attention  --shape B,T,H,d    fused differential attention, causal: B batch, T tokens,
                                          H heads, d the half-head width (q,k: 2H half-heads of d,
                                          v: H heads of 2d), fused per-head RMSNorm
                                                                              default ${diffAttentionDefault}
  --op attention       --shape B,T,H,d    the matched baseline: standard causal attention with 2H
                                          heads of width d                    default ${DEFAULT_SHAPES.attention}
  --op diff-attention-backward  --shape B,T,H,d
                       diffAttentionBackward for the diff-attention inputs and a random output
                       gradient (the statistics come from one forward, not timed)
                                                                              default ${diffBackwardDefault}
  --op attention-backward       --shape B,T,H,d
                       attentionBackward for the attention inputs          default ${backwardDefault}
  --op forward         --shape B,T        full forward of a ~21M-parameter model (vocab 8192,
                                          d_model 512, 4 layers, SwiGLU 1408) on B×T tokens
                                                                              default ${DEFAULT_SHAPES.forward}
  --op decode          --shape B,T        one KV-cache decode step per sequence at context T
                                                                              default ${DEFAULT_SHAPES.decode}
  --op train-step      --shape B,T        one training step of the forward's model on B×T tokens:
                                          valueAndGrads around model.loss (next-token targets),
                                          then ops.adamw on every parameter; the same model's
                                          forward is timed in the same rounds, beside it
                                                                              default ${DEFAULT_SHAPES['train-step']}
  --attention KIND     model variant for forward/decode/train-step: differential (default),
                       standard, differential-v2
  --size SIZE          the model of forward/decode/train-step: a difftx train size (tiny, small or a
                       preset FILE) with the byte vocabulary, as --attention matches it; default the
                       ~21M-parameter model below
  --dtype DTYPE        storage dtype of the inputs of the attention and matmul ops: float32
                       (default), float16 or bfloat16 (the model ops run in float32)
  --repeat N           runs enqueued back to back per timed sample, the time divided by N
                       (default 1); on a GPU this hides the wait for the device, as timing a
                       loop between two CUDA events does
  --threads N          cpu backend only: run kernels on N threads (default: every hardware thread)
  --engine E           cpu backend only: native, wasm-relaxed-simd, wasm-simd128 or typescript
                       (default: native where its addon loads, else the best WebAssembly this
                       JavaScript engine runs)
  --isa I              cpu backend's native engine only: at most avx512, avx2 or baseline (default:
                       the best this CPU runs, by CPUID)

FLOPs counted (gflops = FLOPs / median time); a backward counts 2.5 × its forward's FLOPs, as
FlashAttention counts them (each result's flopCount says which formula it used):
  matmul                    2·M·N·K
  diff-attention            6·B·T²·d·H   (two maps; Q·Kᵀ over d, P·V over 2d; causal halves the pairs)
  attention                 4·B·T²·d·H   (2H heads; Q·Kᵀ and P·V over d; causal)
  diff-attention-backward   2.5 × 6·B·T²·d·H = 15·B·T²·d·H
  attention-backward        2.5 × 4·B·T²·d·H = 10·B·T²·d·H
  forward                   2·(parameters of every matrix multiply, LM head included)·B·T + per-layer attention
  train-step                3.5 × forward (the forward and its backward)
tokensPerSecond: B·T / median time for the attention ops, forward and train-step, B / median time
for decode.

With --json, stdout is {"backend", "device", "results": [{"op", "shape", "dtype", "medianMs",
"minMs", "maxMs", "runs", "gflops"?, "flopCount"?, "tokensPerSecond"?}]}; train-step adds
"forward": {"medianMs", "minMs", "maxMs", "tokensPerSecond"} and "ratioToForward" (its tokens/s over
the forward's); on the cpu backend every result adds "heap": {"baseBytes", "peakBytes"}, the
WebAssembly/native heap's live bytes before one more untimed run and their peak during it (the model,
its optimiser state and the inputs are in the base); an unsupported op has "unsupported": the reason
instead of timings.`;

export async function bench(args: string[]): Promise<number> {
  const { values } = parseFlags('bench', args, {
    backend: { type: 'string' },
    op: { type: 'string', multiple: true },
    shape: { type: 'string', multiple: true },
    attention: { type: 'string' },
    size: { type: 'string' },
    runs: { type: 'string' },
    repeat: { type: 'string' },
    dtype: { type: 'string' },
    threads: { type: 'string' },
    engine: { type: 'string' },
    isa: { type: 'string' },
    json: { type: 'boolean' },
  });
  const opList = (values.op ?? []) as BenchOp[];
  for (const op of opList) {
    if (!BENCH_OPS.includes(op)) {
      throw new UsageError(`--op: expected one of ${BENCH_OPS.join(', ')}, got ${JSON.stringify(op)}`);
    }
  }
  if (values.shape && opList.length !== 1) throw new UsageError('--shape needs exactly one --op');
  const op = opList.length === 1 ? opList[0] : undefined;
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
  if (dtype !== 'float32' && (opList.length === 0 || opList.some((o) => !DTYPE_OPS.includes(o)))) {
    throw new UsageError(`--dtype ${dtype} needs --op ${DTYPE_OPS.join(' | ')} (the model ops run in float32)`);
  }
  const threads = values.threads === undefined ? undefined : parseIntegerFlag('threads', values.threads, 1, 1);
  const custom = threads !== undefined || values.engine !== undefined || values.isa !== undefined;
  if (custom && values.backend !== 'cpu')
    throw new UsageError('--threads, --engine and --isa apply to the cpu backend: add --backend cpu');
  // Every flag is checked before any work starts, so a typo costs nothing.
  const plan = (
    op === undefined
      ? (opList.length > 0 ? opList : BENCH_OPS).map((o) => ({ op: o, shape: DEFAULT_SHAPES[o] }))
      : (values.shape ?? [DEFAULT_SHAPES[op]]).map((shape) => ({ op, shape }))
  ).map((item) => ({ ...item, dims: shapeDims(item.op, item.shape) }));
  // A training preset as the model of forward/decode/train-step: what `difftx train --size` trains.
  const model =
    values.size === undefined
      ? undefined
      : presetModelConfig(await resolvePreset(values.size), attention, BYTE_VOCABULARY);
  const backend = custom
    ? await customCpuBackend({ threads, engine: values.engine, isa: values.isa })
    : await resolveBackend(values.backend);
  try {
    return await runPlan(backend, plan, { minRuns, repeat, dtype, attention, model, json: values.json === true });
  } finally {
    if (custom) await backend.dispose?.();
  }
}

interface BenchResult {
  op: string;
  shape: string;
  dtype: string;
  medianMs?: number;
  minMs?: number;
  maxMs?: number;
  runs?: number;
  gflops?: number;
  flopCount?: string;
  tokensPerSecond?: number;
  forward?: { medianMs: number; minMs: number; maxMs: number; tokensPerSecond: number };
  ratioToForward?: number;
  heap?: { baseBytes: number; peakBytes: number };
  unsupported?: string;
}

async function runPlan(
  backend: Backend,
  plan: Array<{ op: BenchOp; shape: string; dims: number[] }>,
  options: {
    minRuns: number;
    repeat: number;
    dtype: DType;
    attention: AttentionKind;
    model?: ModelConfigInput;
    json: boolean;
  },
): Promise<number> {
  const { minRuns, repeat, attention } = options;
  progress(`${backend.name}: ${backend.device}`);
  const results: BenchResult[] = [];
  const measured: Array<{ result: BenchResult; workload: Workload }> = [];
  try {
    for (const item of plan) {
      const dtype = DTYPE_OPS.includes(item.op) ? options.dtype : 'float32';
      const result: BenchResult = { op: item.op, shape: item.shape, dtype };
      results.push(result);
      let workload: Workload | undefined;
      try {
        workload = makeWorkload(item.op, item.dims, backend, attention, dtype, options.model);
        // One untimed run first: it finds a kernel the backend lacks before any timing starts.
        const probe = workload;
        await measureSideBySide(backend, [() => probe.run()], { warmup: 0, minRuns: 1, maxRuns: 1, minSeconds: 0 });
        const heap = heapOf(backend);
        if (heap) result.heap = await heapPeak(backend, heap, () => probe.run());
        measured.push({ result, workload });
      } catch (error) {
        workload?.dispose();
        // A backend without an op's kernels says so, and the other ops still run.
        if (!(error instanceof UnsupportedKernelError)) throw error;
        result.unsupported = error.message;
        progress(`  ${item.op} ${item.shape}: unsupported (${error.message})`);
      }
    }
    // Every workload and its companion run in each round, in plan order.
    const runs: Array<() => RunOutput> = [];
    for (const { workload } of measured) {
      runs.push(() => workload.run());
      if (workload.companion) runs.push(() => workload.companion!.run());
    }
    progress(`  ${measured.map(({ result }) => `${result.op} ${result.shape}`).join(', ')}, side by side …`);
    const timings = runs.length > 0 ? await measureSideBySide(backend, runs, { minRuns, repeat }) : [];
    let next = 0;
    for (const { result, workload } of measured) {
      const timing = timings[next++];
      Object.assign(result, summary(timing, workload.flops, workload.tokens, FLOP_COUNTS[result.op as BenchOp]));
      if (workload.companion) {
        const forward = timings[next++];
        const tokensPerSecond = round((workload.companion.tokens * 1000) / forward.medianMs, 2);
        result.forward = { ...spread(forward), tokensPerSecond };
        result.ratioToForward = round(result.tokensPerSecond! / tokensPerSecond, 4);
      }
      progress(
        `    ${result.op} ${result.shape}: ${result.medianMs} ms (${result.minMs}–${result.maxMs})` +
          `${result.gflops !== undefined ? `, ${result.gflops} GFLOP/s` : ''}` +
          `${result.forward ? `; forward ${result.forward.medianMs} ms, ratio ${result.ratioToForward}` : ''}` +
          `${result.heap ? `; heap ${mib(result.heap.baseBytes)} MiB, peak ${mib(result.heap.peakBytes)} MiB` : ''}`,
      );
    }
  } finally {
    for (const { workload } of measured) workload.dispose();
  }
  if (options.json) {
    writeJson({ backend: backend.name, device: backend.device, results });
  } else {
    writeLine(`${backend.name}: ${backend.device}`);
    writeLine(
      table(
        ['op', 'shape', 'dtype', 'median ms', 'min–max ms', 'GFLOP/s', 'tokens/s', 'runs'],
        results.map((r) =>
          r.unsupported
            ? [r.op, r.shape, r.dtype, 'unsupported', '', '', '', '']
            : [
                r.op,
                r.shape,
                r.dtype,
                String(r.medianMs),
                `${r.minMs}–${r.maxMs}`,
                r.gflops?.toString() ?? '',
                r.forward
                  ? `${r.tokensPerSecond} (forward ${r.forward.tokensPerSecond}, ${r.ratioToForward}×)`
                  : (r.tokensPerSecond?.toString() ?? ''),
                String(r.runs),
              ],
        ),
      ),
    );
  }
  return 0;
}

/** The cpu backend's heap statistics (its own API, beyond the kernel contract); null on other backends. */
function heapOf(backend: Backend): Pick<CpuBackend, 'heapStats' | 'resetHeapPeak'> | null {
  if (!('heapStats' in backend) || !('resetHeapPeak' in backend)) return null;
  const cpu = backend as Backend & Pick<CpuBackend, 'heapStats' | 'resetHeapPeak'>;
  return cpu.heapStats() ? cpu : null;
}

/** The heap's live bytes before one run, and their peak during it (outputs freed after). */
async function heapPeak(
  backend: Backend,
  heap: Pick<CpuBackend, 'heapStats' | 'resetHeapPeak'>,
  run: () => RunOutput,
): Promise<{ baseBytes: number; peakBytes: number }> {
  heap.resetHeapPeak();
  const baseBytes = heap.heapStats()!.usedBytes;
  await measureSideBySide(backend, [run], { warmup: 0, minRuns: 1, maxRuns: 1, minSeconds: 0 });
  return { baseBytes, peakBytes: heap.heapStats()!.peakBytes };
}

function spread(timing: Timing): { medianMs: number; minMs: number; maxMs: number } {
  return { medianMs: round(timing.medianMs, 4), minMs: round(timing.minMs, 4), maxMs: round(timing.maxMs, 4) };
}

function summary(timing: Timing, flops: number | undefined, tokens: number | undefined, flopCount: string | undefined) {
  return {
    ...spread(timing),
    runs: timing.runs,
    ...(flops !== undefined ? { gflops: round(flops / timing.medianMs / 1e6, 3), flopCount } : {}),
    ...(tokens !== undefined ? { tokensPerSecond: round((tokens * 1000) / timing.medianMs, 2) } : {}),
  };
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
