/**
 * What the browser test runs in a page or a Web Worker (no window here): the conformance suite on a
 * backend, and a matmul on a backend against the same one on a single-threaded backend.
 */
import { maxAbsError, reference, runConformance, type ConformanceReport } from '@diff-transformer/conformance';
import { ops, tensor } from '@diff-transformer/core';
import { createCpuBackend, type CpuBackend } from '@diff-transformer/backend-cpu';

const { matmul: matmulReference, refTensor } = reference;

/** What the global scope offers for threads. */
export interface Environment {
  readonly crossOriginIsolated: boolean;
  readonly sharedArrayBuffer: boolean;
  readonly hardwareConcurrency: number;
  /** Whether this thread may block in Atomics.wait (a worker, not a page's main thread). */
  readonly canBlock: boolean;
}

export interface SuiteRun {
  readonly environment: Environment;
  readonly device: string;
  readonly engine: string;
  readonly threads: number;
  readonly sharedMemory: boolean;
  readonly report: ConformanceReport;
}

export interface MatmulRun {
  readonly device: string;
  readonly threads: number;
  readonly sharedMemory: boolean;
  /** Times the threaded matmul ran (again until the workers had claimed tasks, 20 at most). */
  readonly repeats: number;
  /** Elements of the threaded results that differ from the single-threaded one (bit for bit). */
  readonly mismatches: number;
  /** Largest |threaded − float64 reference| over the largest |reference|. */
  readonly relativeError: number;
  /** Tasks of the parallel phases the matmuls ran, and how many of them worker threads claimed. */
  readonly tasks: number;
  readonly workerTasks: number;
  /** The heap's size before and after the inputs were placed above a block larger than it. */
  readonly capacityBefore: number;
  readonly capacityAfter: number;
}

export interface MatmulOptions {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  /** A backend of its own with this many threads; default: the registered 'cpu'. */
  readonly threads?: number;
}

export function environment(): Environment {
  let canBlock = false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    canBlock = true;
  } catch {
    // No SharedArrayBuffer, or a thread that may not block.
  }
  return {
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    hardwareConcurrency: navigator.hardwareConcurrency,
    canBlock,
  };
}

export async function suiteRun(backend: CpuBackend): Promise<SuiteRun> {
  const report = await runConformance(backend);
  return {
    environment: environment(),
    device: backend.device,
    engine: backend.engine,
    threads: backend.threads,
    sharedMemory: backend.sharedMemory,
    report,
  };
}

/** Deterministic values in [−1, 1). */
function values(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = (state >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** m×k · k×n on `backend`, against a single-threaded backend of the same engine and a float64 sum. */
export async function matmulRun(backend: CpuBackend, { m, k, n }: MatmulOptions): Promise<MatmulRun> {
  const single = await createCpuBackend({ engine: backend.engine, threads: 1 });
  try {
    const a = values(m * k, 1);
    const b = values(k * n, 2);
    const reference = await ops
      .matmul(tensor(a, [m, k], { backend: single }), tensor(b, [k, n], { backend: single }))
      .data();

    // A block larger than the whole heap first: the inputs and the outputs then lie in memory the
    // heap grew into after the workers started, which they must see.
    const capacityBefore = backend.heapStats()?.capacityBytes ?? 0;
    const ballast = tensor(new Float32Array(capacityBefore / 4 + 2 ** 20), [capacityBefore / 4 + 2 ** 20], { backend });
    const [ta, tb] = [tensor(a, [m, k], { backend }), tensor(b, [k, n], { backend })];
    const capacityAfter = backend.heapStats()?.capacityBytes ?? 0;
    const before = backend.threadStats();
    const results: Float32Array[] = [];
    // A worker asleep in Atomics.wait may wake after the calling thread has claimed every task of
    // one matmul (on a busy machine); the next ones find it spinning.
    for (let repeat = 0; repeat < 20; repeat++) {
      const product = ops.matmul(ta, tb);
      results.push((await product.data()) as Float32Array);
      product.dispose();
      if (backend.threads === 1 || (repeat >= 2 && backend.threadStats().workerTasks > before.workerTasks)) break;
    }
    const after = backend.threadStats();
    for (const t of [ballast, ta, tb]) t.dispose();

    let mismatches = 0;
    for (const result of results) for (let i = 0; i < m * n; i++) if (!Object.is(result[i], reference[i])) mismatches++;
    const exact = matmulReference(refTensor(a, [m, k]), refTensor(b, [k, n]), {
      transposeA: false,
      transposeB: false,
    }).data;
    const error = maxAbsError(results[0], exact);
    const scale = exact.reduce((largest, x) => Math.max(largest, Math.abs(x)), 0);
    return {
      device: backend.device,
      threads: backend.threads,
      sharedMemory: backend.sharedMemory,
      repeats: results.length,
      mismatches,
      relativeError: error / scale,
      tasks: after.tasks - before.tasks,
      workerTasks: after.workerTasks - before.workerTasks,
      capacityBefore,
      capacityAfter,
    };
  } finally {
    single.dispose();
  }
}
