/**
 * Parity fixtures: one attention module of the official code (microsoft/unilm, Diff-Transformer), its
 * weights, an input and the output the official module computed, in one safetensors file:
 *   x [B, T, E], y [B, T, E]              input and the official module's output
 *   rope_cos, rope_sin [T, r/2]           the rotary tables it ran with
 *   weights.<state_dict name>             its parameters, PyTorch Linear layout [out, in]
 *   __metadata__ (values JSON-encoded)    source (the official file), num_heads, num_kv_heads (null: MHA),
 *                                         head_dim; V1: embed_dim, depth, lambda_init; V2: d_model
 * runParityFixture builds the same module on the core graph, with the fixture's own rotary tables, runs
 * it on x and compares with y. Each official file has its own semantics, chosen by `source`:
 *   - multihead_flashdiff_1.py: flash_attn's GQA groups the H query half-heads of map m with kv half-heads
 *     m of the Hkv groups — exactly our fused kernel; weights are used as they are.
 *   - multihead_diffattn.py: repeat_kv repeats the 2·Hkv key half-heads as a flat list, so query half-head
 *     j (of 2H) reads key half-head ⌊j/n⌋ and head i reads value head ⌊i/n⌋ (n = H/Hkv). For n > 1 that
 *     pairs differently from the flash file; we gather k/v rows into a multi-head layout that reproduces it.
 *   - Diff-Transformer-V2/multihead_flashdiffv2.py: our 'differential-v2' variant (2H query heads,
 *     interleaved pairs 2i/2i+1 sharing a kv head, λ = σ(x·W_λ) per token and head, o_proj).
 * A test harness like the suite, so it lives here and uses only core's public API.
 */
import {
  activeBackend,
  attentionParameterShapes,
  type AttentionModule,
  type Backend,
  type ByteSource,
  CheckpointConfigError,
  ConfigError,
  DifferentialAttention,
  DifferentialAttentionV2,
  errorStats,
  keep,
  MissingTensorError,
  type ModelConfig,
  type ModelConfigInput,
  openSafetensors,
  resolveConfig,
  RotaryTables,
  type Tensor,
  TensorShapeMismatchError,
  tensor,
  tidy,
  UnexpectedTensorError,
  UnsupportedCheckpointError,
} from '@diff-transformer/core';

export type ParityModuleKind = 'diffattn' | 'flashdiff1' | 'flashdiffv2';

/** The official files a fixture may come from, by file name. */
export const PARITY_SOURCES: Readonly<Record<string, ParityModuleKind>> = {
  'multihead_diffattn.py': 'diffattn',
  'multihead_flashdiff_1.py': 'flashdiff1',
  'multihead_flashdiffv2.py': 'flashdiffv2',
};

export interface ParityFixture {
  readonly file: string;
  /** The official file's path as recorded (e.g. "Diff-Transformer/multihead_flashdiff_1.py"). */
  readonly source: string;
  readonly kind: ParityModuleKind;
  readonly numHeads: number;
  /** null: multi-head (as many kv heads as heads). */
  readonly numKvHeads: number | null;
  readonly headDim: number;
  readonly embedDim: number;
  /** V1 only. */
  readonly depth: number | null;
  readonly lambdaInit: number | null;
  readonly x: { shape: number[]; data: Float64Array };
  readonly y: { shape: number[]; data: Float64Array };
  readonly ropeCos: { shape: number[]; data: Float64Array };
  readonly ropeSin: { shape: number[]; data: Float64Array };
  /** Official state_dict names (without the `weights.` prefix). */
  readonly weights: ReadonlyMap<string, { shape: number[]; data: Float32Array }>;
}

export interface ParityResult {
  readonly file: string;
  readonly source: string;
  readonly kind: ParityModuleKind;
  /** Σ(out − y)² / Σy². */
  readonly nmse: number;
  readonly maxAbsError: number;
  readonly shape: readonly number[];
  /** The core graph's output (float32 values). */
  readonly output: Float32Array;
}

/** Reads and validates a parity fixture. Errors are CheckpointError subclasses naming the file and tensor. */
export async function readParityFixture(source: ByteSource): Promise<ParityFixture> {
  const st = await openSafetensors(source);
  try {
    const file = st.name;
    const meta = (key: string, required = true): unknown => {
      const raw = st.metadata[key];
      if (raw === undefined) {
        if (required)
          throw new CheckpointConfigError(
            file,
            `__metadata__.${key}`,
            'missing; a parity fixture records source, num_heads, num_kv_heads and head_dim',
          );
        return undefined;
      }
      try {
        return JSON.parse(raw);
      } catch {
        throw new CheckpointConfigError(
          file,
          `__metadata__.${key}`,
          `expected a JSON-encoded value, got ${JSON.stringify(raw)}`,
        );
      }
    };
    const positive = (key: string, value: unknown): number => {
      if (!Number.isSafeInteger(value) || (value as number) < 1)
        throw new CheckpointConfigError(
          file,
          `__metadata__.${key}`,
          `expected a positive integer, got ${JSON.stringify(value)}`,
        );
      return value as number;
    };
    const sourcePath = meta('source');
    if (typeof sourcePath !== 'string')
      throw new CheckpointConfigError(
        file,
        '__metadata__.source',
        `expected a string, got ${JSON.stringify(sourcePath)}`,
      );
    const baseName = sourcePath.split('/').pop()!;
    const kind = PARITY_SOURCES[baseName];
    if (!kind) {
      throw new UnsupportedCheckpointError(
        file,
        `source ${sourcePath}`,
        `source ${JSON.stringify(sourcePath)} is not one of the official files ` +
          `this project matches: ${Object.keys(PARITY_SOURCES).join(', ')}`,
      );
    }
    const numHeads = positive('num_heads', meta('num_heads'));
    const kv = meta('num_kv_heads');
    const numKvHeads = kv === null ? null : positive('num_kv_heads', kv);
    const headDim = positive('head_dim', meta('head_dim'));
    const v2 = kind === 'flashdiffv2';
    const embedDim = positive(v2 ? 'd_model' : 'embed_dim', meta(v2 ? 'd_model' : 'embed_dim'));
    let depth: number | null = null;
    let lambdaInit: number | null = null;
    if (!v2) {
      const dep = meta('depth');
      if (!Number.isSafeInteger(dep) || (dep as number) < 0)
        throw new CheckpointConfigError(
          file,
          '__metadata__.depth',
          `expected an integer ≥ 0, got ${JSON.stringify(dep)}`,
        );
      depth = dep as number;
      const li = meta('lambda_init');
      if (typeof li !== 'number' || !Number.isFinite(li))
        throw new CheckpointConfigError(
          file,
          '__metadata__.lambda_init',
          `expected a number, got ${JSON.stringify(li)}`,
        );
      lambdaInit = li;
    }
    const float64 = async (name: string) => {
      const info = st.tensors.get(name);
      if (!info)
        throw new MissingTensorError(file, name, 'a parity fixture holds x, y, rope_cos, rope_sin and weights.*');
      return { shape: [...info.shape], data: await st.readFloat64(name) };
    };
    const x = await float64('x');
    const y = await float64('y');
    const ropeCos = await float64('rope_cos');
    const ropeSin = await float64('rope_sin');
    if (x.shape.length !== 3 || x.shape[2] !== embedDim)
      throw new TensorShapeMismatchError(file, 'x', [x.shape[0] ?? 1, x.shape[1] ?? 1, embedDim], x.shape, '[B, T, E]');
    if (y.shape.join() !== x.shape.join())
      throw new TensorShapeMismatchError(file, 'y', x.shape, y.shape, 'y has the shape of x');
    const rotaryHalf = ropeCos.shape[1];
    if (
      ropeCos.shape.length !== 2 ||
      ropeCos.shape[0] < x.shape[1] ||
      !(rotaryHalf >= 1 && 2 * rotaryHalf <= headDim)
    ) {
      throw new TensorShapeMismatchError(
        file,
        'rope_cos',
        [x.shape[1], headDim / 2],
        ropeCos.shape,
        '[T, r/2] with r ≤ head_dim',
      );
    }
    if (ropeSin.shape.join() !== ropeCos.shape.join())
      throw new TensorShapeMismatchError(file, 'rope_sin', ropeCos.shape, ropeSin.shape, 'as rope_cos');
    const weights = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, info] of st.tensors) {
      if (name.startsWith('weights.'))
        weights.set(name.slice('weights.'.length), { shape: [...info.shape], data: await st.readFloat32(name) });
      else if (!['x', 'y', 'rope_cos', 'rope_sin'].includes(name))
        throw new UnexpectedTensorError(file, name, 'a parity fixture holds x, y, rope_cos, rope_sin and weights.*');
    }
    return {
      file,
      source: sourcePath,
      kind,
      numHeads,
      numKvHeads,
      headDim,
      embedDim,
      depth,
      lambdaInit,
      x,
      y,
      ropeCos,
      ropeSin,
      weights,
    };
  } finally {
    await st.close();
  }
}

/** The official module's parameter names and shapes, from the fixture's metadata. */
function officialParameterShapes(
  f: Pick<ParityFixture, 'kind' | 'numHeads' | 'numKvHeads' | 'headDim' | 'embedDim'>,
  subln: boolean,
): Map<string, number[]> {
  const h = f.numHeads;
  const hkv = f.numKvHeads ?? h;
  const d = f.headDim;
  const e = f.embedDim;
  const shapes = new Map<string, number[]>();
  if (f.kind === 'flashdiffv2') {
    shapes.set('q_proj.weight', [2 * h * d, e]);
    shapes.set('k_proj.weight', [hkv * d, e]);
    shapes.set('v_proj.weight', [hkv * d, e]);
    shapes.set('o_proj.weight', [e, h * d]);
    shapes.set('lambda_proj.weight', [h, e]);
    return shapes;
  }
  shapes.set('q_proj.weight', [2 * h * d, e]);
  shapes.set('k_proj.weight', [2 * hkv * d, e]);
  shapes.set('v_proj.weight', [2 * hkv * d, e]);
  shapes.set('out_proj.weight', [e, 2 * h * d]);
  for (const name of ['lambda_q1', 'lambda_k1', 'lambda_q2', 'lambda_k2']) shapes.set(name, [d]);
  if (subln) shapes.set('subln.weight', [2 * d]);
  return shapes;
}

/** The graph config and our-named weights that reproduce the fixture's module. */
function parityModule(f: ParityFixture): {
  config: ModelConfig;
  weights: Map<string, { shape: number[]; data: Float32Array }>;
} {
  const subln = f.weights.has('subln.weight');
  const expected = officialParameterShapes(f, subln);
  for (const [name, shape] of expected) {
    const w = f.weights.get(name);
    if (!w) throw new MissingTensorError(f.file, `weights.${name}`, `${f.source} has it`);
    if (w.shape.join() !== shape.join()) throw new TensorShapeMismatchError(f.file, `weights.${name}`, shape, w.shape);
  }
  for (const name of f.weights.keys()) {
    if (!expected.has(name))
      throw new UnexpectedTensorError(f.file, `weights.${name}`, `${f.source} has no such parameter`);
  }
  const h = f.numHeads;
  const hkv = f.numKvHeads ?? h;
  const d = f.headDim;
  const e = f.embedDim;
  let numKvHeadsOfModule = hkv;
  const weights = new Map<string, { shape: number[]; data: Float32Array }>(f.weights);
  const inputOf = (): ModelConfigInput => ({
    vocabSize: 1,
    hiddenSize: e,
    numLayers: 1,
    numHeads: h,
    numKvHeads: numKvHeadsOfModule,
    headDim: d,
    intermediateSize: 1,
    attention: f.kind === 'flashdiffv2' ? 'differential-v2' : 'differential',
    rope: { layout: 'interleaved' },
    subLayerNorm: { eps: 1e-5, affine: subln },
    maxPositions: f.x.shape[1],
  });
  if (f.kind === 'flashdiffv2') {
    if (h % hkv !== 0) {
      throw new UnsupportedCheckpointError(
        f.file,
        'num_kv_heads',
        `num_heads ${h} is not a multiple of num_kv_heads ${hkv}: ` +
          `a differential pair would straddle two kv heads, which the fused kernel does not express`,
      );
    }
    weights.set('out_proj.weight', weights.get('o_proj.weight')!);
    weights.delete('o_proj.weight');
  } else if (f.kind === 'diffattn' && hkv !== h) {
    // Naive file: query half-head j reads key half-head ⌊j/n⌋ and head i value head ⌊i/n⌋. In our
    // multi-head layout head i's maps read key half-heads 2i, 2i+1 and value head i: gather those rows.
    const n = h / hkv;
    const k = weights.get('k_proj.weight')!.data;
    const v = weights.get('v_proj.weight')!.data;
    const kRows = new Float32Array(2 * h * d * e);
    const vRows = new Float32Array(2 * h * d * e);
    for (let j = 0; j < 2 * h; j++)
      kRows.set(k.subarray(Math.floor(j / n) * d * e, (Math.floor(j / n) + 1) * d * e), j * d * e);
    for (let i = 0; i < h; i++)
      vRows.set(v.subarray(Math.floor(i / n) * 2 * d * e, (Math.floor(i / n) + 1) * 2 * d * e), i * 2 * d * e);
    weights.set('k_proj.weight', { shape: [2 * h * d, e], data: kRows });
    weights.set('v_proj.weight', { shape: [2 * h * d, e], data: vRows });
    numKvHeadsOfModule = h;
  }
  if (hkv < 1 || h % hkv !== 0) {
    throw new UnsupportedCheckpointError(
      f.file,
      'num_kv_heads',
      `num_heads ${h} must be a multiple of num_kv_heads ${hkv}`,
    );
  }
  let config: ModelConfig;
  try {
    config = resolveConfig(inputOf());
  } catch (error) {
    if (error instanceof ConfigError) throw new CheckpointConfigError(f.file, null, error.message, { cause: error });
    throw error;
  }
  const shapes = attentionParameterShapes(config);
  for (const [name, shape] of shapes) {
    const w = weights.get(name);
    if (!w || w.shape.join() !== shape.join())
      throw new CheckpointConfigError(f.file, null, `metadata and weights disagree on ${name}`);
  }
  return { config, weights };
}

/**
 * Runs the fixture's module on the core graph (on `backend`, default the active one) and compares its
 * output with the fixture's y. Frees everything it uploaded.
 */
export async function runParityFixture(f: ParityFixture, options: { backend?: Backend } = {}): Promise<ParityResult> {
  const backend = options.backend ?? activeBackend();
  const { config, weights } = parityModule(f);
  const uploaded = new Map<string, Tensor>();
  let rope: RotaryTables | null = null;
  let module: AttentionModule | null = null;
  try {
    for (const [name, w] of weights) uploaded.set(name, keep(tensor(w.data, w.shape, { backend })));
    const param = (name: string) => uploaded.get(name)!;
    rope = RotaryTables.fromValues(
      backend,
      Float32Array.from(f.ropeCos.data),
      Float32Array.from(f.ropeSin.data),
      2 * f.ropeCos.shape[1],
    );
    if (config.attention === 'differential') {
      module = new DifferentialAttention(config, f.depth ?? 0, param, backend, {
        lambdaInit: f.lambdaInit ?? undefined,
      });
    } else {
      module = new DifferentialAttentionV2(config, param);
    }
    const tables = rope;
    const m = module;
    const out = tidy(() =>
      m.forward(tensor(Float32Array.from(f.x.data), f.x.shape, { backend }), { rope: tables, positionOffset: 0 }),
    );
    let output: Float32Array;
    try {
      output = await out.dataFloat();
    } finally {
      out.dispose();
    }
    const { nmse, maxAbsError } = errorStats(output, f.y.data);
    return { file: f.file, source: f.source, kind: f.kind, nmse, maxAbsError, shape: f.y.shape, output };
  } finally {
    module?.dispose?.();
    rope?.dispose();
    for (const t of uploaded.values()) t.dispose();
  }
}
