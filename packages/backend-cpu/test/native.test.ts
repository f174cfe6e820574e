/**
 * The native engine's own behaviour: the instruction set it runs and why, engines on several
 * JavaScript threads of one process at once, and matmul's packed weights (B packed once when it comes
 * back unchanged, dropped when the tensor is written in place or freed).
 * The kernels' results are the conformance suite's business (conformance.test.ts runs it on every
 * instruction set this CPU has).
 */
import { createCpuBackend, type CpuBackend, type Isa } from '@diff-transformer/backend-cpu';
import { ops, tensor, type Tensor } from '@diff-transformer/core';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { expectClose, randomArray } from './helpers.js';

const backends: CpuBackend[] = [];
afterAll(() => {
  for (const backend of backends) backend.dispose();
});
async function native(options: { threads?: number; isa?: Isa } = {}): Promise<CpuBackend> {
  const backend = await createCpuBackend({ engine: 'native', threads: options.threads ?? 2, isa: options.isa });
  backends.push(backend);
  return backend;
}

/** The [cols, rows] transpose of a row-major [rows, cols] matrix. */
function transpose(x: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const y = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) y[j * rows + i] = x[i * cols + j];
  return y;
}

/** C = A·B in float64 for row-major A [m, k] and B [k, n] (or B stored [n, k] when transposed). */
function product(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
  transposeB = false,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p] * (transposeB ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = sum;
    }
  return c;
}

/** What a worker thread of `inWorkers` reports: its engine, each run's loss and gradients, and when it ran. */
interface WorkerRun {
  readonly engine: string;
  readonly runs: Float32Array[];
  readonly started: number;
  readonly ended: number;
}

const bytes = (x: Float32Array): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

/**
 * Starts `count` worker threads, each with a native engine of its own (2 pool threads) from the built
 * package; once all are ready they start together, and each runs `runs` times the loss and gradients
 * of a small differential model, at sizes where matmul, attention and its backward, the norms, rotary,
 * the loss and the embedding's scatter-add all take their parallel paths. Each run is the loss followed
 * by every gradient, in one array.
 */
async function inWorkers(count: number, runs: number): Promise<WorkerRun[]> {
  // Worker threads load the built package (they do not go through the test's TypeScript transform),
  // and core by the path the package resolves it to, so both share one core.
  const dist = new URL('../dist/index.js', import.meta.url).href;
  const core = new URL('../node_modules/@diff-transformer/core/dist/index.js', import.meta.url).href;
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { createCpuBackend } = await import(${JSON.stringify(dist)});
      const { DiffTransformer, valueAndGrads } = await import(${JSON.stringify(core)});
      const backend = await createCpuBackend({ engine: 'native', threads: 2 });
      const config = { vocabSize: 300, hiddenSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2,
        intermediateSize: 256, attention: 'differential', maxPositions: 256 };
      const ids = [Array.from({ length: 160 }, (_, t) => (t * 37 + 11) % 300),
        Array.from({ length: 160 }, (_, t) => (t * t) % 300)];
      const targets = ids.map((row) => row.map((id, t) => (t === 0 ? -100 : (id * 7 + 3) % 300)));
      const gate = new Int32Array(workerData.gate);
      Atomics.add(gate, 0, 1);
      while (Atomics.load(gate, 0) < workerData.count) Atomics.wait(gate, 0, Atomics.load(gate, 0), 5);
      const started = Date.now();
      const runs = [];
      for (let run = 0; run < workerData.runs; run++) {
        const model = DiffTransformer.create(config, { backend, seed: 3, perturbNorms: 0.1 });
        const { value, grads } = valueAndGrads(() => model.loss(ids, targets), model.parameters);
        const parts = [await value.data()];
        for (const g of grads.values()) parts.push(await g.data());
        const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
        runs.push(all);
        value.dispose();
        for (const g of grads.values()) g.dispose();
        model.dispose();
      }
      const ended = Date.now();
      parentPort.postMessage({ engine: backend.engine, runs, started, ended });
      backend.dispose();
    })().catch((error) => parentPort.postMessage({ error: String((error && error.stack) || error) }));`;
  const gate = new SharedArrayBuffer(4);
  const workers = Array.from(
    { length: count },
    () => new Worker(source, { eval: true, workerData: { gate, count, runs } }),
  );
  try {
    return await Promise.all(
      workers.map(
        (worker) =>
          new Promise<WorkerRun>((resolve, reject) => {
            worker.once('message', (message: WorkerRun | { error: string }) =>
              'error' in message ? reject(new Error(message.error)) : resolve(message),
            );
            worker.once('error', reject);
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

describe('the native engine', () => {
  it.each(['avx512', 'avx2', 'baseline'] as const)(
    'runs at most the instruction set asked for (%s), saying so',
    async (isa) => {
      const backend = await native({ isa });
      expect(backend.engine).toBe('native');
      const ran = /^native (avx512|avx2|baseline) /.exec(backend.engineReason)?.[1];
      const order = ['avx512', 'avx2', 'baseline'];
      expect(order.indexOf(ran ?? '')).toBeGreaterThanOrEqual(order.indexOf(isa));
      // Every shape family of the micro-kernels: full tiles, edge rows (1, 2, 4 and the rest), edge columns,
      // B read in place (row-major, N a multiple of the tile width) and packed, A stored either way, and K
      // past one K slice (256). A weight gradient's shape (small M and N, long K) comes last.
      for (const [m, n, k] of [
        [1, 129, 300],
        [3, 33, 17],
        [13, 65, 257],
        [97, 100, 70],
        [8, 64, 40],
        [11, 96, 33],
        [25, 128, 513],
        [128, 128, 2048],
      ]) {
        const a = randomArray(m * k, m);
        const b = randomArray(k * n, n);
        const expected = product(a, b, m, n, k);
        for (const transposeA of [false, true])
          for (const transposeB of [false, true]) {
            const aStored = transposeA ? transpose(a, m, k) : a;
            const bStored = transposeB ? transpose(b, k, n) : b;
            const c = ops.matmul(
              tensor(aStored, transposeA ? [k, m] : [m, k], { backend }),
              tensor(bStored, transposeB ? [n, k] : [k, n], { backend }),
              { transposeA, transposeB },
            );
            expectClose(await c.data(), expected, 1e-4, 1e-4);
          }
      }
    },
  );

  it('serves every JavaScript thread of a process: two worker threads at once get the bits one thread gets', async () => {
    // The main thread holds a native engine throughout, as an application's main thread would.
    await native({ threads: 1 });
    const alone = await inWorkers(1, 1);
    const together = await inWorkers(2, 3);
    // The two workers' gradients were computed at the same time, or the run proves nothing.
    const [a, b] = together;
    expect(Math.max(a.started, b.started)).toBeLessThan(Math.min(a.ended, b.ended));
    const reference = alone[0].runs[0];
    expect(reference.length).toBeGreaterThan(100_000);
    for (const worker of [...alone, ...together]) {
      expect(worker.engine).toBe('native');
      for (const run of worker.runs) expect(Buffer.compare(bytes(run), bytes(reference))).toBe(0);
    }
  });

  it('rotates as the TypeScript kernel does, bit for bit (both layouts, partial rotary, an offset)', async () => {
    const backend = await native();
    const typescript = await createCpuBackend({ engine: 'typescript' });
    backends.push(typescript);
    const [b, t, h, d, positions] = [2, 37, 3, 24, 64];
    const x = randomArray(b * t * h * d, 7);
    for (const half of [d / 2, 8]) {
      const cos = randomArray(positions * half, 8);
      const sin = randomArray(positions * half, 9);
      for (const layout of ['interleaved', 'half'] as const) {
        const rotate = async (on: CpuBackend) =>
          ops
            .rotary(
              tensor(x, [b, t, h, d], { backend: on }),
              tensor(cos, [positions, half], { backend: on }),
              tensor(sin, [positions, half], { backend: on }),
              { layout, positionOffset: 5 },
            )
            .data();
        expect(Array.from(await rotate(backend)), `${layout}, r = ${2 * half}`).toEqual(
          Array.from(await rotate(typescript)),
        );
      }
    }
  });

  it('rejects an unknown instruction set with the ones it knows', async () => {
    await expect(createCpuBackend({ engine: 'native', isa: 'sse9' as Isa })).rejects.toThrow(
      /isa: expected avx512, avx2, baseline, got "sse9"/,
    );
  });
});

describe('packed weights', () => {
  const [m, n, k] = [5, 70, 40];

  async function setup() {
    const backend = await native();
    const x = tensor(randomArray(m * k, 1), [m, k], { backend });
    const w = tensor(randomArray(n * k, 2), [n, k], { backend });
    const used = () => backend.heapStats()!.usedBytes;
    const run = async (weight: Tensor) => {
      const y = ops.matmul(x, weight, { transposeB: true });
      const values = await y.data();
      y.dispose();
      return values;
    };
    return { backend, x, w, used, run };
  }

  it('packs a B that comes back unchanged once, keeps it, and reads it to the same bits', async () => {
    const { x, w, used, run } = await setup();
    const expected = product(await x.data(), await w.data(), m, n, k, true);
    const first = await run(w);
    const before = used();
    const second = await run(w); // the second use packs B into a block of its own
    const kept = used() - before;
    // k rows of N rounded up to the panel width (16, 32 or 8 floats per row of a panel).
    expect(kept).toBeGreaterThanOrEqual(4 * k * n);
    const third = await run(w);
    expect(used() - before).toBe(kept); // reused, not packed again
    expectClose(first, expected, 1e-4, 1e-4);
    expect(Array.from(second)).toEqual(Array.from(first));
    expect(Array.from(third)).toEqual(Array.from(first));
    w.dispose(); // freeing the weight frees its packed copy
    expect(used()).toBe(before - 4 * n * k - ((64 - ((4 * n * k) % 64)) % 64));
  });

  it('drops the packed copy when adamw writes the weight in place', async () => {
    const { backend, x, w, run } = await setup();
    await run(w);
    await run(w);
    const grad = tensor(randomArray(n * k, 3), [n, k], { backend });
    const mo = tensor(new Float32Array(n * k), [n, k], { backend });
    const ve = tensor(new Float32Array(n * k), [n, k], { backend });
    const attrs = { learningRate: 0.5, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, step: 1, gradScale: 1 };
    ops.adamw(w, grad, mo, ve, attrs);
    const expected = product(await x.data(), await w.data(), m, n, k, true);
    expectClose(await run(w), expected, 1e-4, 1e-4);
    expectClose(await run(w), expected, 1e-4, 1e-4);
  });

  it('drops the packed copy when cacheWrite writes into B', async () => {
    const { backend, x, w, run } = await setup();
    await run(w);
    await run(w);
    // W [N, K] seen as a cache of N rows of K positions: positions 7 to 9 of every row change.
    ops.cacheWrite(w, tensor(randomArray(3 * n, 4), [n, 3], { backend }), 7);
    const expected = product(await x.data(), await w.data(), m, n, k, true);
    expectClose(await run(w), expected, 1e-4, 1e-4);
  });

  it('does not confuse a freed weight with a new tensor at the same place in the heap', async () => {
    const { backend, x, w, run } = await setup();
    await run(w);
    await run(w);
    w.dispose();
    const other = tensor(randomArray(n * k, 5), [n, k], { backend });
    const expected = product(await x.data(), await other.data(), m, n, k, true);
    expectClose(await run(other), expected, 1e-4, 1e-4);
    expectClose(await run(other), expected, 1e-4, 1e-4);
  });
});
