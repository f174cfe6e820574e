/**
 * The thread pool: started once per backend, reused by every kernel. The main thread is thread 0
 * and works too; workers 1 … threads − 1 share the heap's memory and the kernel module.
 *
 * A kernel call prepares a job (a phase of N independent tasks) in the pool's Job, a block of the heap
 * every entry point is given (c/job.h), then `run` opens it and wakes the workers through a
 * generation counter; every thread claims tasks with an atomic
 * counter inside the module until none is left (so a thread that another program slows down simply
 * claims fewer), and the main thread returns once the finished count reaches N. Nothing is posted
 * per job: all of it is atomics on a control block in the heap.
 *
 * Where the main thread may not block (a browser's window), it spins on the finished count after
 * doing its share; elsewhere it sleeps in Atomics.wait.
 *
 * A kernel too small to pay for waking the workers runs its phases on the main thread, yet through
 * the same task counter and finished count: a worker that wakes late (after the main thread had run
 * a whole parallel phase alone) may claim tasks there, and the main thread waits for those too.
 */
import type { KernelHeap } from '../heap/heap.js';
import type { LoadedKernels } from '../wasm/loader.js';
import { canBlock, spawnWorker, type WorkerThread } from './platform.js';
import { workerSource, type ControlLayout, type WorkerInit, type WorkerMessage } from './worker.js';

/** Generation and stop on one cache line, the finished count and the failure flag on the next. */
const LAYOUT: ControlLayout = { generation: 0, stop: 1, finished: 16, failed: 17 };
const CONTROL_LENGTH = 32;
/** Each worker's stack: the kernels keep little on it (edge tiles of 128 bytes). */
const STACK_BYTES = 64 * 1024;
/** Checks of the generation a worker makes before it sleeps (roughly 20–50 µs). */
const WORKER_SPINS = 20_000;
/** Checks of the finished count the main thread makes before it sleeps. */
const MAIN_SPINS = 2_000;

/** What the pool has run with its workers since it started (all zero without workers). */
export interface ThreadStats {
  /** Phases that woke the workers (a kernel too small for that runs on the calling thread). */
  readonly parallelPhases: number;
  /** Tasks of every phase, and how many of them the worker threads claimed (the rest: the calling thread). */
  readonly tasks: number;
  readonly workerTasks: number;
}

export class ThreadPool {
  readonly #kernels: LoadedKernels;
  readonly #heap: KernelHeap;
  readonly #workers: WorkerThread[];
  readonly #control: number;
  readonly #job: number;
  readonly #stacks: number[];
  readonly #mainCanBlock = canBlock();
  #failure: string | null = null;
  #disposed = false;
  #stats = { parallelPhases: 0, tasks: 0, workerTasks: 0 };

  private constructor(
    kernels: LoadedKernels,
    heap: KernelHeap,
    workers: WorkerThread[],
    control: number,
    job: number,
    stacks: number[],
  ) {
    this.#kernels = kernels;
    this.#heap = heap;
    this.#workers = workers;
    this.#control = control;
    this.#job = job;
    this.#stacks = stacks;
    for (const worker of workers) {
      worker.onMessage((message) => {
        const m = message as WorkerMessage;
        if ('error' in m) this.#failure = m.error;
      });
      // Last, after every listener: an idle pool must never keep Node running.
      worker.unref();
    }
  }

  /**
   * Starts `threads − 1` workers (none when `threads` is 1 or the memory is not shared) and waits
   * until each has instantiated the module. Where workers cannot start (a page whose
   * Content-Security-Policy forbids blob: workers, say) the pool runs on the calling thread alone
   * and says why in a warning: a slower backend beats none.
   */
  static async start(kernels: LoadedKernels, heap: KernelHeap, threads: number): Promise<ThreadPool> {
    const count = kernels.shared ? Math.max(0, threads - 1) : 0;
    const control = heap.allocate(4 * CONTROL_LENGTH);
    new Int32Array(kernels.memory.buffer, control, CONTROL_LENGTH).fill(0);
    const jobBytes = kernels.exports.job_bytes();
    const job = heap.allocate(jobBytes);
    new Uint8Array(kernels.memory.buffer, job, jobBytes).fill(0);
    const stacks: number[] = [];
    const workers: WorkerThread[] = [];
    try {
      const source = workerSource();
      const starting: Promise<void>[] = [];
      for (let thread = 1; thread <= count; thread++) {
        const stack = heap.allocate(STACK_BYTES);
        stacks.push(stack);
        const worker = await spawnWorker(source);
        workers.push(worker);
        starting.push(
          new Promise<void>((resolve, reject) => {
            worker.onError(reject);
            worker.onMessage((message) => {
              const m = message as WorkerMessage;
              if ('ready' in m) resolve();
              else reject(new Error(m.error));
            });
          }),
        );
        const init: WorkerInit = {
          module: kernels.module,
          memory: kernels.memory,
          control,
          controlLength: CONTROL_LENGTH,
          job,
          layout: LAYOUT,
          stackTop: stack + STACK_BYTES,
          thread,
          spins: WORKER_SPINS,
        };
        worker.postMessage(init);
      }
      await Promise.all(starting);
    } catch (cause) {
      for (const worker of workers) worker.terminate();
      for (const stack of stacks) heap.free(stack);
      console.warn(`backend 'cpu': worker threads could not start (${String(cause)}); running on one thread`);
      return new ThreadPool(kernels, heap, [], control, job, []);
    }
    return new ThreadPool(kernels, heap, workers, control, job, stacks);
  }

  /** Threads that run kernels, the main thread included. */
  get threads(): number {
    return this.#workers.length + 1;
  }

  /** The heap offset of the Job every kernel call of this pool prepares and runs. */
  get job(): number {
    return this.#job;
  }

  get stats(): ThreadStats {
    return { ...this.#stats };
  }

  /**
   * Runs a prepared job phase by phase: `tasks` is the first phase's task count (what a *_prepare
   * export returned). With `parallel` false (a job too small to pay for waking the workers) the
   * main thread runs every task itself.
   */
  run(tasks: number, parallel: boolean): void {
    const kernels = this.#kernels.exports;
    const job = this.#job;
    for (let phase = tasks; phase > 0; phase = kernels.job_advance(job)) {
      if (this.#workers.length === 0) {
        kernels.job_open(job);
        kernels.job_run(job, 0);
      } else this.#runPhase(phase, parallel && phase > 1);
    }
  }

  /**
   * Runs one phase of `tasks` tasks with workers present. Only `wake` phases bump the generation,
   * but every phase is counted to its end: a worker that woke late for an earlier phase (which this
   * thread had finished alone) claims tasks of whatever phase is open when it gets there, and this
   * thread must not return, or advance to a phase that reads their output, before those finished.
   */
  #runPhase(tasks: number, wake: boolean): void {
    const kernels = this.#kernels.exports;
    const control = new Int32Array(this.#kernels.memory.buffer, this.#control, CONTROL_LENGTH);
    // Reset before opening: a worker may claim (and count) tasks the moment the phase is open.
    Atomics.store(control, LAYOUT.finished, 0);
    kernels.job_open(this.#job);
    if (wake) {
      Atomics.add(control, LAYOUT.generation, 1);
      Atomics.notify(control, LAYOUT.generation);
    }
    const ran = kernels.job_run(this.#job, 0);
    let finished = Atomics.add(control, LAYOUT.finished, ran) + ran;
    for (let i = 0; finished < tasks; i++) {
      if (Atomics.load(control, LAYOUT.failed) !== 0) {
        throw new Error(
          `backend 'cpu': a worker thread failed while running a kernel${this.#failure ? ` (${this.#failure})` : ''}`,
        );
      }
      if (this.#mainCanBlock && i >= MAIN_SPINS) Atomics.wait(control, LAYOUT.finished, finished, 100);
      finished = Atomics.load(control, LAYOUT.finished);
    }
    if (wake) this.#stats.parallelPhases++;
    this.#stats.tasks += tasks;
    this.#stats.workerTasks += tasks - ran;
  }

  /**
   * Stops and terminates the workers and frees their stacks; later jobs run on the calling thread (the
   * Job stays allocated for them).
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const control = new Int32Array(this.#kernels.memory.buffer, this.#control, CONTROL_LENGTH);
    Atomics.store(control, LAYOUT.stop, 1);
    Atomics.add(control, LAYOUT.generation, 1);
    Atomics.notify(control, LAYOUT.generation);
    for (const worker of this.#workers) worker.terminate();
    this.#workers.length = 0;
    for (const stack of this.#stacks) this.#heap.free(stack);
    this.#heap.free(this.#control);
  }
}
