/**
 * The C kernels' entry points, listed once. Everything else that names them comes from this list:
 *   - scripts/entry-points.mjs writes c/entry-points.generated.h from it before either build: the C
 *     prototypes every kernel file includes (so a definition that disagrees with its entry here does
 *     not compile), the WebAssembly export of each, and the X-macro list native/addon.cc binds;
 *   - the TypeScript types below (the WebAssembly module's exports, the native addon's kernels) are
 *     derived from it, so a binding that passes the wrong number of arguments does not typecheck.
 * test/entry-points.test.ts checks what the two builds expose against it.
 *
 * Pointers are byte offsets into the engine's heap (0: none); the WebAssembly module reads them as
 * unsigned 32-bit values, the native addon adds them to its heap's base. A kernel is configured
 * (its *_configure, where the scratch it needs depends on the shape), prepared (its *_prepare:
 * returns the first phase's task count) and then run as a job on the pool (../threads/pool.ts, or
 * the addon's pool).
 *
 * Adding a kernel: an entry here (its first parameter the Job, when it prepares a job); its C body in
 * c/*.c, or in a native/*.c of its own for the native engine alone (marked nativeOnly), with an
 * arguments struct in the Job (c/job.h: JOB_ARGS, JOB_ARGS_FIT) in place of any file-static state; a
 * binding in ./bindings.ts and its place in ./engine.ts's table; then `build:native`, and `build:wasm`
 * to regenerate the committed binaries.
 */

/** A pointer into the heap to elements of `T`, read-only or written. */
type Pointer<T extends string> = `const ${T}*` | `${T}*`;

/**
 * The C types an entry point's parameters may have, all passed as JavaScript numbers: scalars, the
 * Job, and heap offsets to float32, float64, int32, 16-bit (bfloat16, float16) or 8-bit elements.
 * scripts/entry-points.mjs accepts the same.
 */
type CType = 'Job*' | 'int' | 'float' | Pointer<'float' | 'double' | 'int32_t' | 'uint16_t' | 'uint8_t' | 'int8_t'>;

/** One parameter as C declares it: `type name`. */
type Parameter = `${CType} ${string}`;

interface EntryPoint {
  /** uint32_t: scratch bytes (4 GiB − 1 saturates); int: a task count or a count of tasks run. */
  readonly returns: 'void' | 'int' | 'uint32_t';
  readonly parameters: readonly Parameter[];
  /** What it does, in a line: the generated header's comment. */
  readonly doc: string;
  /** Only the native engine has it (native/matmul.c's packed B): the WebAssembly module lacks it. */
  readonly nativeOnly?: true;
}

/** The shape of an attention call, forward or backward (c/attention.c, c/attention-backward.c). */
export const ATTENTION_GEOMETRY = [
  'int batch',
  'int tokens',
  'int heads',
  'int kv_heads',
  'int k_heads',
  'int dk',
  'int dv',
  'int capacity',
  'int maps',
  'int lambda_per_token',
  'int causal',
  'int key_offset',
  'int key_length',
  'float scale',
  'int norm',
  'float eps',
  'float output_scale',
] as const satisfies readonly Parameter[];

export const ENTRY_POINTS = {
  job_bytes: {
    returns: 'uint32_t',
    parameters: [],
    doc: 'Bytes of a Job (c/job.h): each engine allocates one in its heap and passes it to every entry point below that takes one.',
  },
  job_open: {
    returns: 'void',
    parameters: ['Job* job'],
    doc: 'Publishes the prepared phase of the current job.',
  },
  job_run: {
    returns: 'int',
    parameters: ['Job* job', 'int thread'],
    doc: 'Claims and runs tasks of the open phase until none is left; returns how many it ran.',
  },
  job_advance: {
    returns: 'int',
    parameters: ['Job* job'],
    doc: 'After a phase has finished: prepares the next and returns its task count, or 0 when done.',
  },

  matmul_configure: {
    returns: 'uint32_t',
    parameters: ['Job* job', 'int batches', 'int m', 'int n', 'int k', 'int flags'],
    doc: "Sets the next matmul's shape (flags: MATMUL_FLAGS); returns the scratch bytes it needs.",
  },
  matmul_prepare: {
    returns: 'int',
    parameters: ['Job* job', 'const float* a', 'const float* b', 'float* c', 'float* scratch'],
    doc: "Prepares the configured matmul; returns the first phase's task count.",
  },
  matmul_packed_b_bytes: {
    returns: 'uint32_t',
    parameters: ['Job* job'],
    doc: "Bytes of the configured matmul's B packed for the micro-kernel.",
    nativeOnly: true,
  },
  matmul_pack_b_prepare: {
    returns: 'int',
    parameters: ['Job* job', 'const float* b', 'float* packed'],
    doc: "Prepares packing the configured matmul's B into `packed`; returns the task count.",
    nativeOnly: true,
  },
  matmul_prepare_packed: {
    returns: 'int',
    parameters: ['Job* job', 'const float* a', 'const float* packed_b', 'float* c'],
    doc: 'Prepares the configured matmul with B already packed (it needs no scratch).',
    nativeOnly: true,
  },

  attention_configure: {
    returns: 'uint32_t',
    parameters: ['Job* job', ...ATTENTION_GEOMETRY, 'int statistics', 'int threads'],
    doc: "Sets the next attention call's shape (maps: 2 differential, 1 standard); returns the scratch bytes.",
  },
  attention_prepare: {
    returns: 'int',
    parameters: [
      'Job* job',
      'const float* q',
      'const float* k',
      'const float* v',
      'const float* lambda',
      'const float* norm_weight',
      'float* out',
      'float* log_sum_exp',
      'float* map_outputs',
      'float* scratch',
    ],
    doc:
      'Prepares the configured attention call (norm_weight 0: none; log_sum_exp and map_outputs 0 without ' +
      "statistics, map_outputs 0 for standard attention); returns the first phase's task count.",
  },
  attention_backward_configure: {
    returns: 'uint32_t',
    parameters: ['Job* job', ...ATTENTION_GEOMETRY, 'int threads'],
    doc: "Sets the next attention backward's shape (as attention_configure); returns the scratch bytes.",
  },
  attention_backward_prepare: {
    returns: 'int',
    parameters: [
      'Job* job',
      'const float* q',
      'const float* k',
      'const float* v',
      'const float* lambda',
      'const float* norm_weight',
      'const float* log_sum_exp',
      'const float* map_outputs',
      'const float* output',
      'const float* d_out',
      'float* grad_q',
      'float* grad_k',
      'float* grad_v',
      'float* d_lambda',
      'float* d_norm_weight',
      'float* scratch',
    ],
    doc:
      'Prepares the configured backward (differential: lambda, norm_weight, map_outputs, d_lambda and ' +
      "d_norm_weight, 0 where absent; standard: output); returns the first phase's task count.",
  },

  elementwise_prepare: {
    returns: 'int',
    parameters: ['Job* job', 'int kind', 'const float* a', 'const float* b', 'float* y', 'int length'],
    doc: 'Prepares y = kind(a, b) elementwise over `length` values (ELEMENTWISE); returns the task count.',
  },
  swiglu_backward_prepare: {
    returns: 'int',
    parameters: [
      'Job* job',
      'const float* gate',
      'const float* up',
      'const float* dy',
      'float* d_gate',
      'float* d_up',
      'int length',
    ],
    doc: "Prepares swiglu's backward over `length` values; returns the task count.",
  },
  rotary_prepare: {
    returns: 'int',
    parameters: [
      'Job* job',
      'const float* x',
      'const float* cos',
      'const float* sin',
      'float* y',
      'int batch',
      'int tokens',
      'int heads',
      'int width',
      'int half',
      'int interleaved',
      'int position_offset',
    ],
    doc: 'Prepares y = rotary(x) (interleaved 1 or 0); returns the task count.',
  },
  rms_norm_prepare: {
    returns: 'int',
    parameters: ['Job* job', 'const float* x', 'const float* weight', 'float* y', 'int rows', 'int width', 'float eps'],
    doc: 'Prepares y = rmsNorm(x)·weight (weight 0: none) over `rows` rows of `width`; returns the task count.',
  },
  rms_norm_backward_scratch: {
    returns: 'uint32_t',
    parameters: ['int rows', 'int width'],
    doc: 'Scratch bytes of rms_norm_backward_prepare: one share of dWeight per task.',
  },
  rms_norm_backward_prepare: {
    returns: 'int',
    parameters: [
      'Job* job',
      'const float* x',
      'const float* weight',
      'const float* dy',
      'float* dx',
      'float* d_weight',
      'float* scratch',
      'int rows',
      'int width',
      'float eps',
    ],
    doc: "Prepares rmsNorm's backward (weight 0: none; d_weight 0: not wanted); returns the first phase's task count.",
  },
  embedding_backward_scratch: {
    returns: 'uint32_t',
    parameters: ['int count', 'int vocab'],
    doc: 'Scratch bytes of embedding_backward_prepare: the sort of the ids.',
  },
  embedding_backward_prepare: {
    returns: 'int',
    parameters: [
      'Job* job',
      'const int32_t* ids',
      'const float* dy',
      'float* table',
      'int count',
      'int vocab',
      'int width',
      'int32_t* scratch',
    ],
    doc: "Prepares the scatter-add of `count` rows of dy at ids into table [vocab, width]; returns the first phase's task count.",
  },
  cross_entropy_prepare: {
    returns: 'int',
    parameters: [
      'Job* job',
      'const float* logits',
      'const int32_t* targets',
      'float* loss',
      'float* d_logits',
      'double* row_loss',
      'int rows',
      'int vocab',
      'int ignore_index',
      'float scale',
    ],
    doc: "Prepares the fused loss and its gradient (row_loss: one double per row); returns the first phase's task count.",
  },
  adamw_prepare: {
    returns: 'int',
    parameters: [
      'Job* job',
      'float* param',
      'const float* grad',
      'float* m',
      'float* v',
      'int length',
      'float beta1',
      'float one_minus_beta1',
      'float beta2',
      'float one_minus_beta2',
      'float eps',
      'float decay',
      'float step_size',
      'float correction',
      'float grad_scale',
    ],
    doc: 'Prepares one AdamW step in place (constants computed on the host, in float64); returns the task count.',
  },
  sum_squares_scratch: {
    returns: 'uint32_t',
    parameters: ['int length'],
    doc: 'Scratch bytes of sum_squares_prepare for `length` values.',
  },
  sum_squares_prepare: {
    returns: 'int',
    parameters: ['Job* job', 'const float* x', 'float* y', 'int length', 'double* scratch'],
    doc: "Prepares y[0] = Σ x² over `length` ≥ 1 values; returns the first phase's task count.",
  },
} as const satisfies Record<string, EntryPoint>;

type EntryPointName = keyof typeof ENTRY_POINTS;

/** Every parameter a number, as JavaScript passes them. */
type Numbers<P extends readonly unknown[]> = { -readonly [I in keyof P]: number };

/** ATTENTION_GEOMETRY's values, as a binding passes them. */
export type AttentionGeometry = Numbers<typeof ATTENTION_GEOMETRY>;
type Signature<E extends EntryPoint> = (
  ...args: Numbers<E['parameters']>
) => E['returns'] extends 'void' ? void : number;
type List = typeof ENTRY_POINTS;

/** Every entry point, as the native addon binds them. */
export type NativeEntryPoints = { readonly [N in EntryPointName]: Signature<List[N]> };

/** The entry points both engines have: what the WebAssembly module exports. */
export type CKernelEntryPoints = {
  readonly [N in EntryPointName as List[N] extends { readonly nativeOnly: true } ? never : N]: Signature<List[N]>;
};

/** elementwise_prepare's kinds (c/elementwise.c). */
export const ELEMENTWISE = { add: 0, swiglu: 1, sigmoid: 2 } as const;

/** matmul_configure's flags (c/matmul.c, native/matmul.c). */
export const MATMUL_FLAGS = { transposeA: 1, transposeB: 2, sharedB: 4 } as const;
