import type { Backend } from '@diff-transformer/core';
import type { Workload } from './workloads.js';

export interface Timing {
  medianMs: number;
  runs: number;
}

/**
 * Median wall time of one repetition, after warm-up (with `repeat`, of `repeat` back-to-back runs divided by
 * it). Repeats until both `minRuns` runs and `minSeconds` have passed (or `maxRuns`), so short ops get many
 * samples and long ones a few.
 */
export async function measure(
  backend: Backend,
  workload: Workload,
  options: { warmup?: number; minRuns?: number; maxRuns?: number; minSeconds?: number; repeat?: number } = {},
): Promise<Timing> {
  const { warmup = 2, minRuns = 5, maxRuns = 100, minSeconds = 1, repeat = 1 } = options;
  // One sample enqueues `repeat` runs and waits once: on a GPU this amortises the wait for the device
  // (as CUDA-event timing of a loop does) so short kernels are not measured as launch-and-sync latency.
  const once = async (): Promise<number> => {
    const start = performance.now();
    const outs: Array<ReturnType<Workload['run']>> = [];
    for (let i = 0; i < repeat; i++) outs.push(workload.run());
    const last = outs[outs.length - 1];
    if (backend.synchronize) await backend.synchronize();
    else if (last) await last.data();
    const elapsed = (performance.now() - start) / repeat;
    for (const out of outs) out?.dispose();
    return elapsed;
  };
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  const began = performance.now();
  while (samples.length < maxRuns && (samples.length < minRuns || performance.now() - began < minSeconds * 1000)) {
    samples.push(await once());
  }
  samples.sort((a, b) => a - b);
  const mid = samples.length >> 1;
  const medianMs = samples.length % 2 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2;
  return { medianMs, runs: samples.length };
}
