/**
 * The thread pool's protocol, on the real kernel module: a worker that wakes late, after the
 * calling thread has run a whole parallel phase alone, must not leave a later phase unfinished.
 * Kernels too small to wake the workers still open their phase on the shared task counter, so a late
 * worker claims tasks there too; the calling thread must wait for those before it returns, or the
 * next kernel reads a half-written output. A run in which no late worker claimed such a task never
 * exercised the race: it is reported as skipped (inconclusive), not as a pass.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { KernelHeap } from '../src/heap/heap.js';
import { ThreadPool } from '../src/threads/pool.js';
import { ELEMENTWISE } from '../src/c-kernels/entry-points.js';
import { loadKernels } from '../src/wasm/loader.js';

const loaded = await loadKernels('simd128', true);
const heap = new KernelHeap(loaded.memory, loaded.exports.__heap_base.value as number, loaded.maximumBytes);
// More threads than cores where there are few: late wake-ups are what this is about.
const pool = await ThreadPool.start(loaded, heap, 4);
afterAll(() => pool.dispose());

/** elementwise_prepare's task size (c/elementwise.c). */
const CHUNK = 16384;

describe('the thread pool', () => {
  const title = 'late workers never leave a phase unfinished: a chain of small kernels after a tiny parallel one';
  it(title, async (context) => {
    expect(pool.threads).toBe(4);
    const length = 8 * CHUNK - 1;
    const ones = heap.allocate(4 * length);
    new Float32Array(loaded.memory.buffer, ones, length).fill(1);
    const outputs = [heap.allocate(4 * length), heap.allocate(4 * length)];
    const add = (a: number, b: number, y: number, n: number, parallel: boolean): void =>
      pool.run(loaded.exports.elementwise_prepare(pool.job, ELEMENTWISE.add, a, b, y, n), parallel);
    const y = outputs[0];
    let unfinished = 0;
    // Tasks of those small kernels that late workers claimed: the case this is about.
    let lateClaims = 0;
    // Until late workers have claimed a few tasks (on a loaded machine they may wake only after the
    // whole chain, and claim nothing), a wrong result shows, or two seconds are up.
    const deadline = Date.now() + 2000;
    for (let attempt = 0; unfinished === 0 && (attempt < 20 || lateClaims < 10) && Date.now() < deadline; attempt++) {
      // Long enough for every worker to stop spinning and sleep in Atomics.wait.
      await new Promise((resolve) => setTimeout(resolve, 3));
      // Two tasks: the calling thread usually runs both before a sleeping worker is even awake.
      add(ones, ones, outputs[1], 2 * CHUNK, true);
      // Kernels too small to wake the workers, each read as soon as it returns (as the next kernel would).
      const before = pool.stats;
      for (let step = 0; step < 40; step++) {
        const out = new Float32Array(loaded.memory.buffer, y, length);
        out.fill(-1);
        add(ones, ones, y, length, false);
        for (let i = 0; i < length; i += 64) if (out[i] !== 2) unfinished++;
      }
      lateClaims += pool.stats.workerTasks - before.workerTasks;
    }
    console.log(`late workers claimed ${lateClaims} tasks of kernels that did not wake them`);
    expect(unfinished).toBe(0);
    // No late claim: the race this is about never happened, so the run proves nothing either way.
    if (lateClaims === 0) {
      context.skip(
        'inconclusive: no worker woke late enough to claim a task of a kernel that did not wake it ' +
          '(on this machine the workers slept through every chain, or never slept), so the race was not exercised',
      );
    }
  });
});
