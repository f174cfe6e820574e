/**
 * What the kernel module (../../wasm/*.c) exports. Pointers are byte offsets into the heap; the
 * module reads them as unsigned 32-bit values, so offsets past 2 GiB pass through as they are.
 */
export interface KernelExports {
  /** First byte past the module's stack and data: where the heap starts. */
  readonly __heap_base: WebAssembly.Global;
  /** The calling instance's stack pointer; each worker thread sets its own. */
  readonly __stack_pointer: WebAssembly.Global;

  /** Publishes the prepared phase of the current job. */
  job_open(): void;
  /** Claims and runs tasks of the open phase until none is left; returns how many it ran. */
  job_run(thread: number): number;
  /** After a phase has finished: prepares the next and returns its task count, or 0 when done. */
  job_advance(): number;

  /** Sets the next matmul's shape (flags: MATMUL_FLAGS); returns the scratch bytes it needs. */
  matmul_configure(batches: number, m: number, n: number, k: number, flags: number): number;
  /** Prepares the configured matmul; returns the first phase's task count. */
  matmul_prepare(a: number, b: number, c: number, scratch: number): number;

  /** Sets the next attention call's shape (maps: 2 differential, 1 standard); returns scratch bytes. */
  attention_configure(
    batch: number,
    tokens: number,
    heads: number,
    kvHeads: number,
    keyHeads: number,
    dk: number,
    dv: number,
    capacity: number,
    maps: number,
    lambdaPerToken: number,
    causal: number,
    keyOffset: number,
    keyLength: number,
    scale: number,
    norm: number,
    eps: number,
    outputScale: number,
    threads: number,
  ): number;
  /** Prepares the configured attention call (normWeight 0: none); returns the first phase's task count. */
  attention_prepare(
    q: number,
    k: number,
    v: number,
    lambda: number,
    normWeight: number,
    out: number,
    scratch: number,
  ): number;

  /** Prepares y = kind(a, b) elementwise over `length` values (ELEMENTWISE); returns the task count. */
  elementwise_prepare(kind: number, a: number, b: number, y: number, length: number): number;
  /** Prepares y = rmsNorm(x)·weight (weight 0: none) over `rows` rows of `width`; returns the task count. */
  rms_norm_prepare(x: number, weight: number, y: number, rows: number, width: number, eps: number): number;
}

/** elementwise_prepare's kinds. */
export const ELEMENTWISE = { add: 0, swiglu: 1, sigmoid: 2 } as const;

/** matmul_configure's flags. */
export const MATMUL_FLAGS = { transposeA: 1, transposeB: 2, sharedB: 4 } as const;
