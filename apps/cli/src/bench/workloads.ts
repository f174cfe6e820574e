/**
 * Benchmark workloads, one per `--op`. Each sets its inputs up once on the backend, then `run()`
 * enqueues one repetition. FLOP counts (stated in `difftx bench --help` and in each JSON result):
 *   matmul                    2·M·N·K
 *   diff-attention            6·B·T²·d·H   (causal: two maps, each Q·Kᵀ over d and P·V over 2d, half the pairs)
 *   attention                 4·B·T²·d·H   (the matched baseline: 2H heads of width d, causal)
 *   diff-attention-backward   2.5 × the forward's count (FlashAttention's convention for a backward)
 *   attention-backward        2.5 × the forward's count
 *   forward                   2·(matmul parameters)·B·T + the layers' attention FLOPs as above
 *   train-step                3.5 × forward: the forward, and its backward counted as 2.5 × it
 *   decode                    one token per sequence against a KV cache holding T tokens
 */
import {
  DiffTransformer,
  createRandom,
  ops,
  parameterShapes,
  sizeOf,
  tensor,
  valueAndGrads,
  zeros,
  type AttentionKind,
  type Backend,
  type DType,
  type ModelConfigInput,
  type Tensor,
} from '@diff-transformer/core';
import { UsageError } from '../errors.js';

export const BENCH_OPS = [
  'matmul',
  'diff-attention',
  'attention',
  'diff-attention-backward',
  'attention-backward',
  'forward',
  'decode',
  'train-step',
] as const;
export type BenchOp = (typeof BENCH_OPS)[number];

export const DEFAULT_SHAPES: Record<BenchOp, string> = {
  matmul: '1024x1024x1024',
  'diff-attention': '1,1024,8,64',
  attention: '1,1024,8,64',
  'diff-attention-backward': '1,1024,8,64',
  'attention-backward': '1,1024,8,64',
  forward: '1,256',
  decode: '1,256',
  'train-step': '1,256',
};

/** How each op's FLOPs are counted, as the JSON results state it. */
export const FLOP_COUNTS: Partial<Record<BenchOp, string>> = {
  matmul: '2·M·N·K',
  'diff-attention': '6·B·T²·d·H',
  attention: '4·B·T²·d·H',
  'diff-attention-backward': '2.5 × the forward: 15·B·T²·d·H',
  'attention-backward': '2.5 × the forward: 10·B·T²·d·H',
  forward: '2·(matrix-multiply parameters)·B·T + per-layer attention',
  'train-step': '3.5 × forward (the forward, and its backward counted as 2.5 × it)',
};

/** A backward kernel's FLOPs, counted as FlashAttention counts them: 2.5 times its forward's. */
export const BACKWARD_FLOP_FACTOR = 2.5;

/** The model behind forward/decode: about 21M parameters, random weights. */
function benchModelConfig(attention: AttentionKind): ModelConfigInput {
  const numHeads = attention === 'differential' ? 4 : 8;
  return {
    vocabSize: 8192,
    hiddenSize: 512,
    numLayers: 4,
    numHeads,
    intermediateSize: 1408,
    attention,
    maxPositions: 4096,
  };
}

/** What one repetition leaves to free after synchronising. */
export type RunOutput = Tensor | readonly Tensor[] | undefined;

export interface Workload {
  /** Enqueues one repetition; returns the outputs to free after synchronising. */
  run(): RunOutput;
  flops?: number;
  tokens?: number;
  /**
   * Another measurement of the same setup, timed in the same rounds (train-step: the forward pass of
   * the same model, so that the two throughputs are compared under the same conditions).
   */
  companion?: { readonly label: string; run(): RunOutput; readonly tokens: number };
  dispose(): void;
}

/** Parses `--shape` for an op (MxNxK for matmul, B,T,H,d for attention, B,T for the model). */
export function shapeDims(op: BenchOp, shape: string): number[] {
  switch (op) {
    case 'matmul':
      return parseDims(shape, 'x', ['M', 'N', 'K'], 'MxNxK');
    case 'diff-attention':
    case 'attention':
    case 'diff-attention-backward':
    case 'attention-backward':
      return parseDims(shape, ',', ['B', 'T', 'H', 'd'], 'B,T,H,d');
    case 'forward':
    case 'decode':
    case 'train-step':
      return parseDims(shape, ',', ['B', 'T'], 'B,T');
  }
}

/** Ops whose inputs can be stored in another float dtype (--dtype); the model ops run in float32. */
export const DTYPE_OPS: readonly BenchOp[] = [
  'matmul',
  'diff-attention',
  'attention',
  'diff-attention-backward',
  'attention-backward',
];

export function makeWorkload(
  op: BenchOp,
  dims: number[],
  backend: Backend,
  attention: AttentionKind,
  dtype: DType = 'float32',
  /** The model of forward/decode/train-step (a training preset); default the ~21M bench model. */
  modelConfig: ModelConfigInput = benchModelConfig(attention),
): Workload {
  const random = createRandom(1);
  const filled = (dims: number[], scale = 1) => {
    // Asked of the backend first, so a shape too large for it is the backend's typed out-of-memory
    // error rather than a host array the JavaScript engine refuses.
    zeros(dims, { backend, dtype }).dispose();
    return tensor(
      Float32Array.from({ length: sizeOf(dims) }, () => scale * random.normal()),
      dims,
      { backend, dtype },
    );
  };
  switch (op) {
    case 'matmul': {
      const [m, n, k] = dims;
      const a = filled([m, k]);
      const b = filled([k, n]);
      return {
        run: () => ops.matmul(a, b),
        flops: 2 * m * n * k,
        dispose: () => {
          a.dispose();
          b.dispose();
        },
      };
    }
    case 'diff-attention': {
      const [b, t, h, d] = dims;
      const q = filled([b, t, 2 * h, d]);
      const k = filled([b, t, 2 * h, d]);
      const v = filled([b, t, h, 2 * d]);
      const lambda = tensor(new Float32Array(h).fill(0.5), [h], { backend, dtype });
      const weight = filled([2 * d], 0.1);
      return {
        run: () => ops.diffAttention(q, k, v, lambda, { norm: { weight, eps: 1e-5, outputScale: 0.8 } }),
        flops: 6 * b * t * t * d * h,
        tokens: b * t,
        dispose: () => {
          for (const x of [q, k, v, lambda, weight]) x.dispose();
        },
      };
    }
    case 'attention': {
      const [b, t, h, d] = dims;
      const q = filled([b, t, 2 * h, d]);
      const k = filled([b, t, 2 * h, d]);
      const v = filled([b, t, 2 * h, d]);
      return {
        run: () => ops.attention(q, k, v),
        flops: 4 * b * t * t * d * h,
        tokens: b * t,
        dispose: () => {
          for (const x of [q, k, v]) x.dispose();
        },
      };
    }
    case 'diff-attention-backward': {
      const [b, t, h, d] = dims;
      const q = filled([b, t, 2 * h, d]);
      const k = filled([b, t, 2 * h, d]);
      const v = filled([b, t, h, 2 * d]);
      const lambda = tensor(new Float32Array(h).fill(0.5), [h], { backend, dtype });
      const weight = filled([2 * d], 0.1);
      const dOut = filled([b, t, h, 2 * d]);
      const options = { norm: { weight, eps: 1e-5, outputScale: 0.8 } };
      // The statistics come from one forward, made once: only the backward is timed.
      const { output, statistics } = ops.diffAttentionWithStatistics(q, k, v, lambda, options);
      output.dispose();
      return {
        run: () => {
          const g = ops.diffAttentionBackward(q, k, v, lambda, statistics, dOut, options);
          return [g.dq, g.dk, g.dv, g.dLambda, ...(g.dNormWeight ? [g.dNormWeight] : [])];
        },
        flops: BACKWARD_FLOP_FACTOR * 6 * b * t * t * d * h,
        tokens: b * t,
        dispose: () => {
          for (const x of [q, k, v, lambda, weight, dOut, statistics.logSumExp, statistics.mapOutputs]) x?.dispose();
        },
      };
    }
    case 'attention-backward': {
      const [b, t, h, d] = dims;
      const q = filled([b, t, 2 * h, d]);
      const k = filled([b, t, 2 * h, d]);
      const v = filled([b, t, 2 * h, d]);
      const dOut = filled([b, t, 2 * h, d]);
      const { output, statistics } = ops.attentionWithStatistics(q, k, v);
      return {
        run: () => {
          const g = ops.attentionBackward(q, k, v, output, statistics.logSumExp, dOut);
          return [g.dq, g.dk, g.dv];
        },
        flops: BACKWARD_FLOP_FACTOR * 4 * b * t * t * d * h,
        tokens: b * t,
        dispose: () => {
          for (const x of [q, k, v, dOut, output, statistics.logSumExp]) x.dispose();
        },
      };
    }
    case 'train-step':
      return trainStep(dims, backend, modelConfig, random);
    case 'forward':
    case 'decode': {
      const [b, t] = dims;
      const config = modelConfig;
      const model = DiffTransformer.create(config, { backend, seed: 1 });
      const ids = Array.from({ length: b }, () =>
        Array.from({ length: t }, () => Math.floor(random.next() * config.vocabSize)),
      );
      if (op === 'forward') {
        return {
          run: () => model.forward(ids),
          flops: forwardFlops(model, b, t),
          tokens: b * t,
          dispose: () => model.dispose(),
        };
      }
      const cache = model.createCache(b, t + 1);
      model.forward(ids, { cache }).dispose();
      const step = ids.map((row) => [row[0]]);
      return {
        run: () => {
          cache.length = t;
          return model.forward(step, { cache });
        },
        tokens: b,
        dispose: () => {
          cache.dispose();
          model.dispose();
        },
      };
    }
  }
}

/**
 * One training step of the bench model: valueAndGrads around model.loss (next-token targets), then
 * one AdamW step of every parameter on the backend. Its companion is the same model's forward pass.
 */
function trainStep(
  dims: number[],
  backend: Backend,
  config: ModelConfigInput,
  random: ReturnType<typeof createRandom>,
): Workload {
  const [b, t] = dims;
  const model = DiffTransformer.create(config, { backend, seed: 1 });
  const ids = Array.from({ length: b }, () =>
    Array.from({ length: t }, () => Math.floor(random.next() * config.vocabSize)),
  );
  const targets = ids.map((row) => row.map((_, i) => row[(i + 1) % t]));
  const moments = new Map(
    [...model.parameters].map(([name, p]) => [
      name,
      { m: zeros(p.shape, { backend }), v: zeros(p.shape, { backend }) },
    ]),
  );
  let step = 0;
  return {
    run: () => {
      const { value, grads } = valueAndGrads(() => model.loss(ids, targets), model.parameters);
      step++;
      for (const [name, grad] of grads) {
        const { m, v } = moments.get(name)!;
        ops.adamw(model.parameters.get(name)!, grad, m, v, {
          learningRate: 1e-4,
          beta1: 0.9,
          beta2: 0.95,
          eps: 1e-8,
          weightDecay: 0.1,
          step,
          gradScale: 1,
        });
        grad.dispose();
      }
      return value;
    },
    flops: (1 + BACKWARD_FLOP_FACTOR) * forwardFlops(model, b, t),
    tokens: b * t,
    companion: { label: 'forward', run: () => model.forward(ids), tokens: b * t },
    dispose: () => {
      for (const { m, v } of moments.values()) {
        m.dispose();
        v.dispose();
      }
      model.dispose();
    },
  };
}

function forwardFlops(model: DiffTransformer, b: number, t: number): number {
  const c = model.config;
  let matmulParameters = 0;
  for (const [name, shape] of parameterShapes(c)) {
    if (shape.length === 2 && name !== 'embed_tokens.weight') matmulParameters += sizeOf(shape);
  }
  if (c.tieWordEmbeddings) matmulParameters += c.vocabSize * c.hiddenSize;
  const attentionPerLayer =
    c.attention === 'differential'
      ? 6 * b * t * t * c.headDim * c.numHeads
      : 2 * b * t * t * c.headDim * c.numHeads * (c.attention === 'differential-v2' ? 2 : 1);
  return 2 * matmulParameters * b * t + c.numLayers * attentionPerLayer;
}

function parseDims(shape: string, separator: string, names: string[], form: string): number[] {
  const parts = shape.split(separator);
  const dims = parts.map(Number);
  if (parts.length !== names.length || dims.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new UsageError(
      `--shape: expected ${form} (positive integers ${names.join(', ')}), got ${JSON.stringify(shape)}`,
    );
  }
  return dims;
}
