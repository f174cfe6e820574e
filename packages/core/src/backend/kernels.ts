/**
 * The kernel contract: everything a compute backend implements, in one file.
 *
 * Layers, from the bottom up:
 *   1. Storage   a backend owns the bytes of every tensor it holds; core only keeps opaque handles.
 *   2. Kernels   coarse, model-level forward kernels (not a general op library). Each is a pure function
 *                from input tensors and attributes to a new output storage, except `cacheWrite`, which
 *                writes into a KV cache in place. Core validates every shape and attribute before a
 *                kernel is called (see ../ops), so a kernel may trust its arguments.
 *   3. Backend   a named object with storage functions, a kernel table and a device description.
 *   4. Registry  backends are registered by name with a priority and an async factory (./registry.ts).
 *
 * Conventions shared by every kernel:
 *   - Tensors are dense and row-major; the last dimension is contiguous. Shapes are given as
 *     [B, T, H, d] = [batch, tokens, heads, head width] for attention operands.
 *   - A kernel receives its inputs as `TensorView`s and the output shape/dtype core computed, and
 *     returns the handle of a newly allocated storage holding the result.
 *   - A kernel that the backend lacks is simply absent from `kernels`; one that exists but refuses a
 *     dtype says so through `supports`. Core reports both as UnsupportedKernelError: nothing is ever
 *     silently computed on another backend.
 *   - Kernels never read data back to the host. Readback happens only in `Backend.read`, called when
 *     the user awaits `tensor.data()`.
 *   - Training is a later addition: because kernels are pure functions of named parameter tensors,
 *     backward kernels can be added beside these without changing them.
 */
import type { DType, HostArray } from '../tensor/dtype.js';

/** Opaque handle to backend-owned memory (a typed array, a GPUBuffer, a device pointer, ...). */
export type StorageHandle = unknown;

/** What a kernel sees of an input tensor. */
export interface TensorView {
  readonly storage: StorageHandle;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** The output a kernel must produce; core has already computed and checked it. */
export interface OutputSpec {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

// ---------------------------------------------------------------------------------------------
// Attributes of each kernel
// ---------------------------------------------------------------------------------------------

/**
 * matmul: a [...batch, M, K] · b [...batch, K, N] → [...batch, M, N].
 * With `transposeA`, a is stored as [...batch, K, M]; with `transposeB`, b as [...batch, N, K]
 * (PyTorch's Linear weight layout [out, in] is b with transposeB). b may have no batch dimensions,
 * in which case it is shared by every batch entry of a (a weight).
 */
export interface MatmulAttrs {
  readonly transposeA: boolean;
  readonly transposeB: boolean;
}

/** embedding: table [V, E] gathered at int32 ids [...] → [..., E]. Ids were range-checked by core. */
export type EmbeddingAttrs = Record<string, never>;

/** rmsNorm: y = x / sqrt(mean(x²) + eps) · weight over the last dimension; weight may be absent (= 1). */
export interface RmsNormAttrs {
  readonly eps: number;
}

/**
 * rotary: rotates x [B, T, H, d] by position. cos and sin are tables [P, r/2] with r ≤ d (r < d rotates
 * only the first r dimensions and copies the rest); token t of every batch entry uses row
 * `positionOffset + t`.
 *   - `interleaved`: the pairs are (x[2j], x[2j+1])   (official Diff-Transformer code, GPT-J style)
 *   - `half`:        the pairs are (x[j], x[j + r/2]) (Hugging Face Llama/DiffLlama, GPT-NeoX style)
 * Each pair (a, b) becomes (a·cos − b·sin, b·cos + a·sin).
 */
export interface RotaryAttrs {
  readonly layout: RotaryLayout;
  readonly positionOffset: number;
}
export type RotaryLayout = 'interleaved' | 'half';

/** swiglu: silu(gate) · up, elementwise (SwiGLU feed-forward, before the down projection). */
export type SwigluAttrs = Record<string, never>;

/** add: a + b, elementwise, same shapes (the residual connection). */
export type AddAttrs = Record<string, never>;

/** sigmoid: 1 / (1 + exp(−x)), elementwise (the per-token λ of DIFF Transformer V2). */
export type SigmoidAttrs = Record<string, never>;

/** Which keys a query may attend to, shared by both attention kernels. */
export interface AttentionMaskAttrs {
  /** Causal: query t (at absolute position keyOffset + t) sees keys s ≤ keyOffset + t. */
  readonly causal: boolean;
  /** Absolute position of query 0; non-zero when decoding against a KV cache. */
  readonly keyOffset: number;
  /** Number of valid keys: only keys [0, keyLength) of k and v are read (a cache may be larger). */
  readonly keyLength: number;
  /** Multiplies q·k before the softmax, usually 1/√d. */
  readonly scale: number;
}

/**
 * diffAttention: fused differential attention (DIFF Transformer, Ye et al. 2025, eq. 1):
 *   out_h = (softmax(s·Q1_h·K1_gᵀ) − λ_h·softmax(s·Q2_h·K2_gᵀ)) · V_g
 * for head h in [0, H) with its key/value group g = ⌊h·Hkv/H⌋ (GQA).
 *
 * Inputs:
 *   q      [B, T, 2H, dk]       half-heads; head h's two maps use half-heads 2h (map 1) and 2h+1 (map 2)
 *   k      [B, S, 2Hkv, dk]     per-map keys: map m of group g uses half-head 2g+m (DIFF V1), or
 *          [B, S, Hkv, dk]      shared keys: both maps of group g use head g (DIFF V2)
 *   v      [B, S, Hkv, dv]      values (dv = 2·dk in V1, dk in V2)
 *   lambda [H] per head (V1), or [B, T, H] per token and head (V2, already passed through σ)
 *   normWeight [dv] or absent   learned weight of the fused per-head RMSNorm (only read if `norm`)
 * Output: [B, T, H, dv].
 *
 * With `norm`, each head's output row is replaced by RMSNorm(row; eps) · normWeight · outputScale
 * (the per-head "subln" and the (1 − λinit) factor of the paper), fused into the same kernel.
 *
 * Must stream keys with an online softmax for both maps: no T×S matrix is ever materialised, so
 * memory is linear in context length on every backend.
 */
export interface DiffAttentionAttrs extends AttentionMaskAttrs {
  readonly norm: { readonly eps: number; readonly outputScale: number } | null;
}

/**
 * attention: standard scaled-dot-product attention (the baseline Transformer):
 *   out_h = softmax(s·Q_h·K_gᵀ) · V_g,  g = ⌊h·Hkv/H⌋
 * q [B, T, H, dk], k [B, S, Hkv, dk], v [B, S, Hkv, dv] → [B, T, H, dv]. Streams like diffAttention.
 */
export type AttentionAttrs = AttentionMaskAttrs;

/** softmax over the last dimension of x / temperature (temperature > 0; 1 is plain softmax). */
export interface SoftmaxAttrs {
  readonly temperature: number;
}

/** argmax over the last dimension → int32 indices; ties go to the lowest index. */
export type ArgmaxAttrs = Record<string, never>;

/** narrow: x sliced to [start, start + length) along `axis` (a copy). */
export interface NarrowAttrs {
  readonly axis: number;
  readonly start: number;
  readonly length: number;
}

/**
 * cacheWrite: the one in-place kernel. Copies values [B, T, ...rest] into cache [B, Smax, ...rest]
 * at rows [position, position + T) of every batch entry. Returns nothing.
 */
export interface CacheWriteAttrs {
  readonly position: number;
}

// ---------------------------------------------------------------------------------------------
// The kernel table
// ---------------------------------------------------------------------------------------------

/** Every kernel of the contract, as a backend implements it. */
export interface Kernels {
  matmul(a: TensorView, b: TensorView, attrs: MatmulAttrs, out: OutputSpec): StorageHandle;
  embedding(table: TensorView, ids: TensorView, attrs: EmbeddingAttrs, out: OutputSpec): StorageHandle;
  rmsNorm(x: TensorView, weight: TensorView | null, attrs: RmsNormAttrs, out: OutputSpec): StorageHandle;
  rotary(x: TensorView, cos: TensorView, sin: TensorView, attrs: RotaryAttrs, out: OutputSpec): StorageHandle;
  swiglu(gate: TensorView, up: TensorView, attrs: SwigluAttrs, out: OutputSpec): StorageHandle;
  add(a: TensorView, b: TensorView, attrs: AddAttrs, out: OutputSpec): StorageHandle;
  sigmoid(x: TensorView, attrs: SigmoidAttrs, out: OutputSpec): StorageHandle;
  diffAttention(
    q: TensorView,
    k: TensorView,
    v: TensorView,
    lambda: TensorView,
    normWeight: TensorView | null,
    attrs: DiffAttentionAttrs,
    out: OutputSpec,
  ): StorageHandle;
  attention(q: TensorView, k: TensorView, v: TensorView, attrs: AttentionAttrs, out: OutputSpec): StorageHandle;
  softmax(x: TensorView, attrs: SoftmaxAttrs, out: OutputSpec): StorageHandle;
  argmax(x: TensorView, attrs: ArgmaxAttrs, out: OutputSpec): StorageHandle;
  narrow(x: TensorView, attrs: NarrowAttrs, out: OutputSpec): StorageHandle;
  cacheWrite(cache: TensorView, values: TensorView, attrs: CacheWriteAttrs): void;
}

export type KernelName = keyof Kernels;

export const KERNEL_NAMES: readonly KernelName[] = [
  'matmul',
  'embedding',
  'rmsNorm',
  'rotary',
  'swiglu',
  'add',
  'sigmoid',
  'diffAttention',
  'attention',
  'softmax',
  'argmax',
  'narrow',
  'cacheWrite',
];

/** `true`, or the reason the kernel/dtype pair is not supported. */
export type Support = true | string;

// ---------------------------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------------------------

export interface Backend {
  /** Registry name, e.g. 'cpu', 'webgpu', 'cuda'. */
  readonly name: string;
  /** Human-readable device, e.g. 'CPU (2 threads, float32)' or 'NVIDIA H200 (sm_90)'. */
  readonly device: string;
  /** The kernels this backend implements; an absent kernel is unsupported. */
  readonly kernels: Partial<Kernels>;
  /**
   * Optional finer refusal: whether `kernel` runs for tensors of `dtype` (the dtype of its first input).
   * Absent means every dtype the backend can store.
   */
  supports?(kernel: KernelName, dtype: DType): Support;
  /** The dtypes this backend can store; others are refused when a tensor is created. */
  readonly dtypes: readonly DType[];
  /**
   * Set by a backend that initialised on something slower than its kind promises (a GPU backend on a
   * software adapter): the priority `ready()` ranks it at instead of its registered one, and why. It
   * can only lower the rank; `setBackend(name)` still makes it active.
   */
  readonly effectivePriority?: { readonly value: number; readonly reason: string };

  /** Copies host data into a new storage of `dtype` (float16/bfloat16 are converted from float32). */
  upload(data: HostArray, dtype: DType): StorageHandle;
  /** A new zero-filled storage of `size` elements. */
  zeros(size: number, dtype: DType): StorageHandle;
  /** Reads a storage back to the host; float types come back as float32. */
  read(storage: StorageHandle, dtype: DType, size: number): Promise<HostArray>;
  /** Frees a storage. Work already queued that uses it must still see valid memory. */
  free(storage: StorageHandle): void;
  /** Waits until every queued kernel has finished (for benchmarks). */
  synchronize?(): Promise<void>;
  /** Releases the device; the backend must not be used afterwards. */
  dispose?(): void | Promise<void>;
}
