import type { Backend, Tensor } from '@diff-transformer/core';
import type { RunOutput } from './workloads.js';

const tensorsOf = (out: RunOutput): readonly Tensor[] =>
  out === undefined ? [] : Array.isArray(out) ? out : [out as Tensor];

export interface Timing {
  medianMs: number;
  /** The fastest and slowest sample: the spread of the runs. */
  minMs: number;
  maxMs: number;
  runs: number;
}

export interface MeasureOptions {
  warmup?: number;
  minRuns?: number;
  maxRuns?: number;
  minSeconds?: number;
  repeat?: number;
}

/**
 * Times several workloads side by side: after warm-up rounds, each round runs every workload once (with
 * `repeat`, `repeat` back-to-back runs divided by it), so that a machine whose speed drifts (other
 * processes, clocks) slows all of them alike. Rounds repeat until both `minRuns` rounds and `minSeconds`
 * have passed (or `maxRuns`). Returns each workload's median, fastest and slowest sample.
 */
export async function measureSideBySide(
  backend: Backend,
  runs: ReadonlyArray<() => RunOutput>,
  options: MeasureOptions = {},
): Promise<Timing[]> {
  const { warmup = 2, minRuns = 5, maxRuns = 100, minSeconds = 1, repeat = 1 } = options;
  // One sample enqueues `repeat` runs and waits once: on a GPU this amortises the wait for the device
  // (as CUDA-event timing of a loop does) so short kernels are not measured as launch-and-sync latency.
  const once = async (run: () => RunOutput): Promise<number> => {
    const start = performance.now();
    const outs: RunOutput[] = [];
    for (let i = 0; i < repeat; i++) outs.push(run());
    const last = tensorsOf(outs[outs.length - 1]);
    if (backend.synchronize) await backend.synchronize();
    else if (last.length > 0) await Promise.all(last.map((t) => t.data()));
    const elapsed = (performance.now() - start) / repeat;
    for (const out of outs) for (const t of tensorsOf(out)) t.dispose();
    return elapsed;
  };
  for (let i = 0; i < warmup; i++) for (const run of runs) await once(run);
  const samples = runs.map(() => [] as number[]);
  const began = performance.now();
  while (
    samples[0].length < maxRuns &&
    (samples[0].length < minRuns || performance.now() - began < minSeconds * 1000)
  ) {
    for (const [i, run] of runs.entries()) samples[i].push(await once(run));
  }
  return samples.map((s) => {
    s.sort((a, b) => a - b);
    const mid = s.length >> 1;
    const medianMs = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
    return { medianMs, minMs: s[0], maxMs: s[s.length - 1], runs: s.length };
  });
}
