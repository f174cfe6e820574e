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
    statistics: number,
    threads: number,
  ): number;
  /**
   * Prepares the configured attention call (normWeight 0: none; logSumExp and mapOutputs 0 without
   * statistics, mapOutputs 0 for standard attention); returns the first phase's task count.
   */
  attention_prepare(
    q: number,
    k: number,
    v: number,
    lambda: number,
    normWeight: number,
    out: number,
    logSumExp: number,
    mapOutputs: number,
    scratch: number,
  ): number;

  /** Sets the next attention backward's shape (as attention_configure); returns the scratch bytes. */
  attention_backward_configure(
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
  /**
   * Prepares the configured backward (differential: lambda, normWeight, mapOutputs, dLambda and
   * dNormWeight, 0 where absent; standard: output); returns the first phase's task count.
   */
  attention_backward_prepare(
    q: number,
    k: number,
    v: number,
    lambda: number,
    normWeight: number,
    logSumExp: number,
    mapOutputs: number,
    output: number,
    dOut: number,
    dq: number,
    dk: number,
    dv: number,
    dLambda: number,
    dNormWeight: number,
    scratch: number,
  ): number;

  /** Prepares y = kind(a, b) elementwise over `length` values (ELEMENTWISE); returns the task count. */
  elementwise_prepare(kind: number, a: number, b: number, y: number, length: number): number;
  /** Prepares y = rmsNorm(x)·weight (weight 0: none) over `rows` rows of `width`; returns the task count. */
  rms_norm_prepare(x: number, weight: number, y: number, rows: number, width: number, eps: number): number;

  /** Scratch bytes of rms_norm_backward_prepare: one share of dWeight per task. */
  rms_norm_backward_scratch(rows: number, width: number): number;
  /** Prepares rmsNorm's backward (weight 0: none; dWeight 0: not wanted); returns the task count. */
  rms_norm_backward_prepare(
    x: number,
    weight: number,
    dy: number,
    dx: number,
    dWeight: number,
    scratch: number,
    rows: number,
    width: number,
    eps: number,
  ): number;
  /** Prepares swiglu's backward over `length` values; returns the task count. */
  swiglu_backward_prepare(gate: number, up: number, dy: number, dGate: number, dUp: number, length: number): number;
  /** Scratch bytes of sum_squares_prepare for `length` values. */
  sum_squares_scratch(length: number): number;
  /** Prepares y[0] = Σ x² over `length` ≥ 1 values; returns the first phase's task count. */
  sum_squares_prepare(x: number, y: number, length: number, scratch: number): number;
  /** Scratch bytes of embedding_backward_prepare. */
  embedding_backward_scratch(count: number, vocab: number): number;
  /** Prepares the scatter-add of `count` rows of dy at ids into table [vocab, width]; returns the task count. */
  embedding_backward_prepare(
    ids: number,
    dy: number,
    table: number,
    count: number,
    vocab: number,
    width: number,
    scratch: number,
  ): number;
  /** Prepares the fused loss (rowLoss: scratch of one double per row); returns the first phase's task count. */
  cross_entropy_prepare(
    logits: number,
    targets: number,
    loss: number,
    dLogits: number,
    rowLoss: number,
    rows: number,
    vocab: number,
    ignoreIndex: number,
    scale: number,
  ): number;
  /** Prepares one AdamW step in place (constants computed on the host); returns the task count. */
  adamw_prepare(
    param: number,
    grad: number,
    m: number,
    v: number,
    length: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    eps: number,
    decay: number,
    stepSize: number,
    correction: number,
    gradScale: number,
  ): number;
  /** Prepares y = rotary(x) (interleaved 1 or 0); returns the task count. */
  rotary_prepare(
    x: number,
    cos: number,
    sin: number,
    y: number,
    batch: number,
    tokens: number,
    heads: number,
    width: number,
    half: number,
    interleaved: number,
    positionOffset: number,
  ): number;
}

/** elementwise_prepare's kinds. */
export const ELEMENTWISE = { add: 0, swiglu: 1, sigmoid: 2 } as const;

/** matmul_configure's flags. */
export const MATMUL_FLAGS = { transposeA: 1, transposeB: 2, sharedB: 4 } as const;
