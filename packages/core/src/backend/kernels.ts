/**
 * The kernel contract: everything a compute backend implements, in one file.
 *
 * Layers, from the bottom up:
 *   1. Storage   a backend owns the bytes of every tensor it holds; core only keeps opaque handles.
 *   2. Kernels   coarse, model-level kernels (not a general op library): the forward pass, and the
 *                backward kernels, loss and optimiser step that training needs. Each is a pure function
 *                from input tensors and attributes to new output storages, except `cacheWrite` (writes
 *                into a KV cache) and `adamw` (updates parameters and moments), which work in place.
 *                Core validates every shape and attribute before a kernel is called (see ../ops), so a
 *                kernel may trust its arguments.
 *   3. Backend   a named object with storage functions, a kernel table and a device description.
 *   4. Registry  backends are registered by name with a priority and an async factory (./registry.ts).
 *   5. Guards    optional, for tests: canaries around every storage catch writes outside it.
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
 *   - Kernels with several outputs take one OutputSpec per output and return one handle per output,
 *     in an object with the same keys.
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
// Training: elementwise helpers, saved statistics, backward kernels, the loss and the optimiser
//
// Gradient rules (core's ops/, recorded on a tape only inside valueAndGrads) call these kernels and
// never read data back. Backward kernels follow the forward's shapes: a gradient has the shape and
// dtype of the input it belongs to. Rotary's backward is the forward kernel with −sin (the inverse
// rotation), sigmoid's and exp's are products of these helpers, and matmul's reuses matmul with its
// transposes, so none of them needs a kernel of its own.
// ---------------------------------------------------------------------------------------------

/** exp: eˣ, elementwise (the λ re-parameterisation of DIFF V1). */
export type ExpAttrs = Record<string, never>;

/** mul: a · b, elementwise, same shapes (products in gradient rules). */
export type MulAttrs = Record<string, never>;

/** scale: alpha · x + beta, elementwise (negation, λinit, constant factors in gradient rules). */
export interface ScaleAttrs {
  readonly alpha: number;
  readonly beta: number;
}

/**
 * sumSquares: Σ x² over every element → [1] float32, whatever x's dtype (global-norm gradient
 * clipping). Deterministic: the same input gives the same bits on every call, whatever the thread count.
 */
export type SumSquaresAttrs = Record<string, never>;

/**
 * What an attention kernel saves for its backward, so that the backward can recompute each tile of
 * probabilities from q and k (FlashAttention-2) instead of storing a T×S map:
 *   logSumExp   [B, T, H, maps] float32: per query row and map, ln Σ_s exp(scale·q·k_s) over the keys
 *               the row sees (maps = 2 for diffAttention, map 1 first; 1 for attention)
 *   mapOutputs  [B, T, H, 2, dv] float32, diffAttention only: each map's own output P_m·V before the
 *               difference. The backward needs both maps' row terms (A·dU, B·dU) and dλ = −B·dU; the
 *               normalised output cannot give them back where the norm weight is near zero.
 * Memory stays linear in context: rows × (maps + 2·dv) floats.
 */
export interface AttentionStatisticsSpec {
  readonly logSumExp: OutputSpec;
  readonly mapOutputs: OutputSpec | null;
}
export interface AttentionStatistics {
  readonly logSumExp: StorageHandle;
  readonly mapOutputs: StorageHandle | null;
}
/** A forward attention kernel's output together with what its backward needs. */
export interface AttentionWithStatistics {
  readonly output: StorageHandle;
  readonly statistics: AttentionStatistics;
}

/** The saved statistics as a backward kernel reads them. */
export interface AttentionStatisticsView {
  readonly logSumExp: TensorView;
  readonly mapOutputs: TensorView | null;
}

/**
 * diffAttentionBackward: the gradients of diffAttention (same attrs, same inputs) given dOut, the
 * gradient of its output [B, T, H, dv]. With u = A − λ·B per row (A, B the saved map outputs) and
 * y = u/r · w · outputScale, r = √(mean(u²) + eps), when the norm is fused (y = u otherwise):
 *   dU  = (g − n·mean(g ⊙ n)) / r  with n = u/r, g = dOut ⊙ w · outputScale
 *   dλ  = −Σ B ⊙ dU                per row; summed over every (b, t) for a per-head λ [H]
 *   dW  = Σ_rows dOut ⊙ n · outputScale
 *   map 1 is attention with output gradient dU, map 2 with −λ·dU; dq, dk, dv as for attention
 *   (scores scaled by `scale`, masked keys contribute nothing), dk and dv summed over the heads of a
 *   GQA group and, for shared keys (V2), over both maps.
 * Outputs: dq like q, dk like k, dv like v (rows ≥ keyLength are 0), dLambda like lambda, dNormWeight
 * like normWeight (null without a weight). Must recompute probabilities tile by tile from q, k and the
 * saved log-sum-exp: no T×S buffer, memory linear in context like the forward. Reductions over rows
 * (dk, dv, dλ of a per-head λ, dW) are deterministic: fixed order, whatever the thread count.
 */
export interface DiffAttentionGradientSpecs {
  readonly dq: OutputSpec;
  readonly dk: OutputSpec;
  readonly dv: OutputSpec;
  readonly dLambda: OutputSpec;
  readonly dNormWeight: OutputSpec | null;
}
export interface DiffAttentionGradients {
  readonly dq: StorageHandle;
  readonly dk: StorageHandle;
  readonly dv: StorageHandle;
  readonly dLambda: StorageHandle;
  readonly dNormWeight: StorageHandle | null;
}

/**
 * attentionBackward: the gradients of attention (FlashAttention-2's backward): with P the softmax map
 * recomputed from the saved log-sum-exp and D = rowsum(dOut ⊙ output),
 *   dV = Pᵀ·dOut,  dS = P ⊙ (dOut·Vᵀ − D),  dQ = scale·dS·K,  dK = scale·dSᵀ·Q
 * summed over the heads of a GQA group. Same memory and determinism rules as diffAttentionBackward.
 */
export interface AttentionGradientSpecs {
  readonly dq: OutputSpec;
  readonly dk: OutputSpec;
  readonly dv: OutputSpec;
}
export interface AttentionGradients {
  readonly dq: StorageHandle;
  readonly dk: StorageHandle;
  readonly dv: StorageHandle;
}

/**
 * rmsNormBackward: gradients of y = x/r · w, r = √(mean(x²) + eps), over the last dimension:
 *   dx = (g − n·mean(g ⊙ n)) / r  with n = x/r, g = dy ⊙ w;   dWeight = Σ_rows dy ⊙ n  (deterministic)
 */
export interface RmsNormGradientSpecs {
  readonly dx: OutputSpec;
  readonly dWeight: OutputSpec | null;
}
export interface RmsNormGradients {
  readonly dx: StorageHandle;
  readonly dWeight: StorageHandle | null;
}

/**
 * swigluBackward: gradients of silu(gate) · up, with s = σ(gate):
 *   dGate = dy · up · s · (1 + gate · (1 − s)),   dUp = dy · gate · s
 */
export interface SwigluGradientSpecs {
  readonly dGate: OutputSpec;
  readonly dUp: OutputSpec;
}
export interface SwigluGradients {
  readonly dGate: StorageHandle;
  readonly dUp: StorageHandle;
}

/**
 * embeddingBackward: the table's gradient [V, E] from int32 ids [...] and dy [..., E]: row v is the sum
 * of the rows of dy whose id is v, added in the order of the ids (a deterministic scatter-add: the same
 * bits whatever the thread count); rows of ids that never occur are 0.
 */
export interface EmbeddingBackwardAttrs {
  readonly vocabSize: number;
}

/**
 * crossEntropy: the fused loss of language modelling. logits [N, V], int32 targets [N] →
 *   loss    [1] float32 = scale · Σ_n (ln Σ_j e^(logits[n, j]) − logits[n, target_n])
 *   dLogits [N, V] (logits' dtype) = scale · (softmax(logits[n]) − onehot(target_n))
 * in one pass over each row. Rows whose target is `ignoreIndex` (padding) add nothing to the loss and
 * get a zero gradient row; so does a target outside [0, V), which core's callers refuse before upload.
 * `scale` is 1/(number of counted targets) for a mean. The loss sum is deterministic.
 */
export interface CrossEntropyAttrs {
  readonly ignoreIndex: number;
  readonly scale: number;
}
export interface CrossEntropySpecs {
  readonly loss: OutputSpec;
  readonly dLogits: OutputSpec;
}
export interface CrossEntropyOutputs {
  readonly loss: StorageHandle;
  readonly dLogits: StorageHandle;
}

/**
 * adamw: one AdamW step (Loshchilov & Hutter 2019, as torch.optim.AdamW) in place on param and on the
 * float32 moments m and v, all of param's size; grad has param's dtype. With g = gradScale · grad and
 * step t ≥ 1:
 *   m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
 *   param ← param·(1 − lr·weightDecay) − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)
 * The bias corrections are computed on the host in float64. The third in-place kernel, beside cacheWrite.
 */
export interface AdamWAttrs {
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** 1-based step count, for the bias corrections. */
  readonly step: number;
  /** Multiplies the gradient first: gradient clipping and accumulation without another pass. */
  readonly gradScale: number;
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

  // Training (see the section above). Each is optional for a backend like every kernel: an absent one
  // is reported unsupported.
  exp(x: TensorView, attrs: ExpAttrs, out: OutputSpec): StorageHandle;
  mul(a: TensorView, b: TensorView, attrs: MulAttrs, out: OutputSpec): StorageHandle;
  scale(x: TensorView, attrs: ScaleAttrs, out: OutputSpec): StorageHandle;
  sumSquares(x: TensorView, attrs: SumSquaresAttrs, out: OutputSpec): StorageHandle;
  /** diffAttention that also returns what its backward needs (AttentionStatisticsSpec). */
  diffAttentionWithStatistics(
    q: TensorView,
    k: TensorView,
    v: TensorView,
    lambda: TensorView,
    normWeight: TensorView | null,
    attrs: DiffAttentionAttrs,
    out: OutputSpec,
    statistics: AttentionStatisticsSpec,
  ): AttentionWithStatistics;
  /** attention that also returns its log-sum-exp (AttentionStatisticsSpec, mapOutputs null). */
  attentionWithStatistics(
    q: TensorView,
    k: TensorView,
    v: TensorView,
    attrs: AttentionAttrs,
    out: OutputSpec,
    statistics: AttentionStatisticsSpec,
  ): AttentionWithStatistics;
  diffAttentionBackward(
    q: TensorView,
    k: TensorView,
    v: TensorView,
    lambda: TensorView,
    normWeight: TensorView | null,
    statistics: AttentionStatisticsView,
    dOut: TensorView,
    attrs: DiffAttentionAttrs,
    out: DiffAttentionGradientSpecs,
  ): DiffAttentionGradients;
  attentionBackward(
    q: TensorView,
    k: TensorView,
    v: TensorView,
    output: TensorView,
    statistics: AttentionStatisticsView,
    dOut: TensorView,
    attrs: AttentionAttrs,
    out: AttentionGradientSpecs,
  ): AttentionGradients;
  rmsNormBackward(
    x: TensorView,
    weight: TensorView | null,
    dy: TensorView,
    attrs: RmsNormAttrs,
    out: RmsNormGradientSpecs,
  ): RmsNormGradients;
  swigluBackward(
    gate: TensorView,
    up: TensorView,
    dy: TensorView,
    attrs: SwigluAttrs,
    out: SwigluGradientSpecs,
  ): SwigluGradients;
  embeddingBackward(ids: TensorView, dy: TensorView, attrs: EmbeddingBackwardAttrs, out: OutputSpec): StorageHandle;
  crossEntropy(
    logits: TensorView,
    targets: TensorView,
    attrs: CrossEntropyAttrs,
    out: CrossEntropySpecs,
  ): CrossEntropyOutputs;
  /** In place on param, m and v; returns nothing. */
  adamw(param: TensorView, grad: TensorView, m: TensorView, v: TensorView, attrs: AdamWAttrs): void;
}

export type KernelName = keyof Kernels;

/** The kernels training adds: the helpers of the gradient rules, the backward kernels, loss and optimiser. */
export const TRAINING_KERNEL_NAMES = [
  'exp',
  'mul',
  'scale',
  'sumSquares',
  'diffAttentionWithStatistics',
  'attentionWithStatistics',
  'diffAttentionBackward',
  'attentionBackward',
  'rmsNormBackward',
  'swigluBackward',
  'embeddingBackward',
  'crossEntropy',
  'adamw',
] as const satisfies readonly KernelName[];
export type TrainingKernelName = (typeof TRAINING_KERNEL_NAMES)[number];

/** The kernels inference needs: the forward pass, sampling and the KV cache. */
export const INFERENCE_KERNEL_NAMES = [
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
] as const satisfies readonly KernelName[];
export type InferenceKernelName = (typeof INFERENCE_KERNEL_NAMES)[number];
export type InferenceKernels = Pick<Kernels, InferenceKernelName>;

export const KERNEL_NAMES: readonly KernelName[] = [...INFERENCE_KERNEL_NAMES, ...TRAINING_KERNEL_NAMES];

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
  /** Optional debugging aid: canaries around storages that catch writes outside them (see BackendGuards). */
  readonly guards?: BackendGuards;
}

// ---------------------------------------------------------------------------------------------
// Debug guards (optional)
// ---------------------------------------------------------------------------------------------

/**
 * Guard mode, the sentinels of ggml's test-backend-ops: while it is on, the backend pads every storage
 * it allocates (uploads, zeros, kernel outputs) with canary words right before its first element and
 * right after its last, where nothing may write. `check()` then reports each guard that lost its canary:
 * a kernel that wrote before or past its output. For tests (the conformance runner turns it on around
 * each case); it costs memory and a readback, so it is off by default.
 *   - A storage made while guard mode is on stays guarded until it is freed, whatever the mode then.
 *   - A guarded storage freed while guard mode is on is held back, not reused, until the next `check()`,
 *     so that work which frees its outputs is still checked. Turning guard mode off releases what is
 *     held, unchecked; a guarded storage freed with guard mode off is released at once.
 */
export interface BackendGuards {
  /** Turns guard mode on or off; it only changes how storages made from now on are allocated. */
  enable(on: boolean): void;
  readonly enabled: boolean;
  /**
   * Waits for queued work, checks every guarded storage still alive or held back, releases the held ones
   * and restores the canaries of the others: each violation is reported once.
   */
  check(): Promise<GuardViolation[]>;
}

/** A guard that lost its canary. */
export interface GuardViolation {
  /** Elements and dtype of the storage it guards. */
  readonly size: number;
  readonly dtype: DType;
  /** Before the first element, or after the last. */
  readonly side: 'before' | 'after';
  /** Canary words overwritten on that side. */
  readonly words: number;
}
