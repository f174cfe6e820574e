/**
 * The shape of the native addon (native/addon.cc) as JavaScript sees it. Device pointers are Numbers;
 * every function enqueues work on the backend's one CUDA stream and returns at once, except `read` and
 * `synchronize`, whose promises settle on a worker thread once the stream reaches them. A failing CUDA
 * call throws (or rejects with) an Error with `cudaError` and `cudaErrorName`.
 */

/** What `init()` found: the device, or why there is none. */
export type InitResult =
  | {
      ok: true;
      name: string;
      major: number;
      minor: number;
      multiprocessors: number;
      totalMemory: number;
      /** Bytes of shared memory one block may opt into (what decides the flash kernel's pipeline depth). */
      sharedMemoryPerBlock: number;
      deviceCount: number;
      driverVersion: number;
      runtimeVersion: number;
      forceSimt: boolean;
    }
  | {
      ok: false;
      /** The call that failed, e.g. 'cudaGetDeviceCount', or 'compute capability'. */
      stage: string;
      message: string;
      cudaError?: number;
      cudaErrorName?: string;
      driverVersion: number;
      runtimeVersion: number;
      deviceCount?: number;
      name?: string;
      major?: number;
      minor?: number;
    };

export interface MemoryInfo {
  free: number;
  total: number;
  /** Bytes the stream-ordered pool holds from the driver, and how many of them are in use. */
  poolReserved: number;
  poolUsed: number;
  /** Page-locked readback buffers kept for reuse. */
  pinnedCached: number;
}

/** What attention() would run for given parameters (native attention_plan). */
export interface AttentionPlan {
  path: 'flash' | 'rows';
  /** Blocks the keys of each query row are split across (1: not split; > 1: a combine kernel merges them). */
  splits: number;
  /** flash: cp.async pipeline stages (2 or 3); rows: 0. */
  stages: number;
}

export interface CudaAddon {
  readonly version: string;
  init(): InitResult;
  alloc(bytes: number): number;
  free(pointer: number): void;
  zero(pointer: number, bytes: number): void;
  upload(pointer: number, data: Float32Array | Int32Array, dtype: number): void;
  copy2d(dst: number, dstPitch: number, src: number, srcPitch: number, widthBytes: number, rows: number): void;
  read(pointer: number, count: number, dtype: number): Promise<Float32Array | Int32Array>;
  synchronize(): Promise<void>;
  memoryInfo(): MemoryInfo;
  dispose(): void;

  add(a: number, b: number, out: number, n: number, dtype: number): void;
  swiglu(gate: number, up: number, out: number, n: number, dtype: number): void;
  sigmoid(x: number, out: number, n: number, dtype: number): void;
  rmsNorm(
    x: number,
    weight: number,
    weightDtype: number,
    out: number,
    rows: number,
    width: number,
    eps: number,
    dtype: number,
  ): void;
  rotary(
    x: number,
    cos: number,
    sin: number,
    tableDtype: number,
    out: number,
    batch: number,
    tokens: number,
    heads: number,
    width: number,
    half: number,
    positionOffset: number,
    interleaved: boolean,
    dtype: number,
  ): void;
  embedding(table: number, ids: number, out: number, count: number, width: number, dtype: number): void;
  softmax(x: number, out: number, rows: number, width: number, inverseTemperature: number, dtype: number): void;
  argmax(x: number, out: number, rows: number, width: number, dtype: number): void;
  matmul(
    a: number,
    b: number,
    out: number,
    batches: number,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    bShared: boolean,
    dtype: number,
  ): void;
  /** params: see ATTENTION_PARAMS in ./kernels/attention.ts. */
  attention(params: Float64Array): void;
  /** On this device, or on the one described (the addon needs no device then). */
  attentionPlan(
    params: Float64Array,
    device?: { multiprocessors: number; sharedMemoryPerBlock: number },
  ): AttentionPlan;
  /** The flash kernel's instantiation for a shape (sharedBytes 0: none); needs no device. */
  flashShape(
    dtype: number,
    maps: number,
    dk: number,
    dv: number,
    keyMaps: number,
    stages: number,
  ): { sharedBytes: number; keysPerTile: number; threads: number };
  /** 'simt' makes every attention call take the SIMT kernel (as DIFFTX_CUDA_ATTENTION=simt does); 'auto' undoes it. */
  setAttentionPath(mode: 'auto' | 'simt'): void;

  // Training (native/training.h).
  exp(x: number, out: number, n: number, dtype: number): void;
  mul(a: number, b: number, out: number, n: number, dtype: number): void;
  scale(x: number, out: number, n: number, alpha: number, beta: number, dtype: number): void;
  swigluBackward(gate: number, up: number, dy: number, dGate: number, dUp: number, n: number, dtype: number): void;
  /** attrs: see ADAMW_PARAMS in ./kernels/training.ts. */
  adamw(param: number, grad: number, m: number, v: number, n: number, dtype: number, attrs: Float64Array): void;
  sumSquares(x: number, out: number, n: number, dtype: number): void;
  rmsNormBackward(
    x: number,
    weight: number,
    weightDtype: number,
    dy: number,
    dx: number,
    dWeight: number,
    rows: number,
    width: number,
    eps: number,
    dtype: number,
  ): void;
  crossEntropy(
    logits: number,
    targets: number,
    loss: number,
    dLogits: number,
    rows: number,
    vocab: number,
    ignoreIndex: number,
    scale: number,
    dtype: number,
  ): void;
  /** params: see backwardParams in ./kernels/attention-training.ts. */
  attentionBackward(params: Float64Array): void;
  /** Keys per tile of the attention backward for these head widths; 0 when its shared memory cannot fit. */
  attentionBackwardTile(dk: number, dv: number): number;
  embeddingBackward(
    ids: number,
    dy: number,
    out: number,
    count: number,
    width: number,
    vocab: number,
    dtype: number,
  ): void;
}
