/**
 * Parameter names and shapes of the graph, and their random initialisation. Names follow the
 * official code (q_proj, k_proj, v_proj, out_proj, lambda_q1 … subln) inside a Llama-like layout;
 * weights are in PyTorch's nn.Linear layout [out, in].
 */
import { DiffTransformerError, ShapeError, formatShape } from '../errors.js';
import { shapesEqual, sizeOf } from '../tensor/shape.js';
import { createRandom } from '../util/random.js';
import type { ModelConfig } from './config.js';
import { layerLambdaInit } from './config.js';

/** A parameter on the host, before it is uploaded to a backend. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Every parameter the config needs, with its shape, in a stable order. */
export function parameterShapes(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize: e, intermediateSize: f, vocabSize: v } = config;
  const shapes = new Map<string, number[]>();
  shapes.set('embed_tokens.weight', [v, e]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `layers.${i}`;
    shapes.set(`${p}.attn_norm.weight`, [e]);
    for (const [name, shape] of attentionParameterShapes(config)) shapes.set(`${p}.attn.${name}`, shape);
    shapes.set(`${p}.ffn_norm.weight`, [e]);
    shapes.set(`${p}.ffn.gate_proj.weight`, [f, e]);
    shapes.set(`${p}.ffn.up_proj.weight`, [f, e]);
    shapes.set(`${p}.ffn.down_proj.weight`, [e, f]);
  }
  shapes.set('norm.weight', [e]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [v, e]);
  return shapes;
}

/** The parameters of one attention module, relative to its prefix. */
export function attentionParameterShapes(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize: e, numHeads: h, numKvHeads: hkv, headDim: d } = config;
  const shapes = new Map<string, number[]>();
  switch (config.attention) {
    case 'differential':
      shapes.set('q_proj.weight', [2 * h * d, e]);
      shapes.set('k_proj.weight', [2 * hkv * d, e]);
      shapes.set('v_proj.weight', [hkv * 2 * d, e]);
      shapes.set('out_proj.weight', [e, h * 2 * d]);
      if (config.lambdaParameterization === 'scalar') shapes.set('lambda', [1]);
      else for (const name of ['lambda_q1', 'lambda_k1', 'lambda_q2', 'lambda_k2']) shapes.set(name, [d]);
      if (config.subLayerNorm?.affine) shapes.set('subln.weight', [2 * d]);
      break;
    case 'differential-v2':
      shapes.set('q_proj.weight', [2 * h * d, e]);
      shapes.set('k_proj.weight', [hkv * d, e]);
      shapes.set('v_proj.weight', [hkv * d, e]);
      shapes.set('out_proj.weight', [e, h * d]);
      shapes.set('lambda_proj.weight', [h, e]);
      break;
    case 'standard':
      shapes.set('q_proj.weight', [h * d, e]);
      shapes.set('k_proj.weight', [hkv * d, e]);
      shapes.set('v_proj.weight', [hkv * d, e]);
      shapes.set('out_proj.weight', [e, h * d]);
      break;
  }
  return shapes;
}

export function parameterCount(config: ModelConfig): number {
  let n = 0;
  for (const shape of parameterShapes(config).values()) n += sizeOf(shape);
  return n;
}

export interface InitOptions {
  seed?: number;
  /** Std of the Linear weights and the embedding; default 0.02 as in GPT-2/Llama. */
  std?: number;
  /** Draw norm weights around 1 instead of exactly 1 (tests use it so a missing weight shows). */
  perturbNorms?: number;
}

/**
 * Random parameters: Linear weights and embeddings N(0, std²), λ vectors N(0, 0.1²) as in the paper,
 * a scalar λ at its layer's λinit, norm weights 1 (optionally perturbed). Deterministic in the seed.
 */
export function initParameters(config: ModelConfig, options: InitOptions = {}): Map<string, HostTensor> {
  const random = createRandom(options.seed ?? 0);
  const std = options.std ?? 0.02;
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of parameterShapes(config)) {
    const data = new Float32Array(sizeOf(shape));
    const scalarLambda = /^layers\.(\d+)\.attn\.lambda$/.exec(name);
    if (name.endsWith('norm.weight') || name.endsWith('subln.weight')) {
      const jitter = options.perturbNorms ?? 0;
      for (let i = 0; i < data.length; i++) data[i] = 1 + jitter * random.normal();
    } else if (scalarLambda) {
      data[0] = layerLambdaInit(config, Number(scalarLambda[1]));
    } else {
      const s = /lambda_[qk][12]$/.test(name) ? 0.1 : std;
      for (let i = 0; i < data.length; i++) data[i] = s * random.normal();
    }
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * Checks a parameter set against the config before anything is uploaded: every name present, none
 * unexpected, every shape right. Throws ParameterError naming the tensor.
 */
export function validateParameters(
  config: ModelConfig,
  params: ReadonlyMap<string, HostTensor>,
  source = 'parameters',
): void {
  const expected = parameterShapes(config);
  const missing = [...expected.keys()].filter((name) => !params.has(name));
  if (missing.length) {
    throw new ParameterError(
      source,
      missing[0],
      `missing tensor(s): ${missing.slice(0, 8).join(', ')}` +
        `${missing.length > 8 ? `, … (${missing.length} in all)` : ''}`,
    );
  }
  const unexpected = [...params.keys()].filter((name) => !expected.has(name));
  if (unexpected.length) {
    throw new ParameterError(
      source,
      unexpected[0],
      `unexpected tensor(s) for this config: ${unexpected.slice(0, 8).join(', ')}`,
    );
  }
  for (const [name, shape] of expected) {
    const p = params.get(name)!;
    if (!shapesEqual(p.shape, shape)) {
      throw new ShapeError(`${source}: tensor '${name}'`, formatShape(shape), p.shape);
    }
    if (p.data.length !== sizeOf(shape)) {
      throw new ParameterError(
        source,
        name,
        `tensor '${name}' holds ${p.data.length} values, its shape ${formatShape(shape)} needs ${sizeOf(shape)}`,
      );
    }
  }
}

/** A parameter set does not fit the config (missing, unexpected or malformed tensor). */
export class ParameterError extends DiffTransformerError {
  readonly source: string;
  readonly tensor: string;
  constructor(source: string, tensor: string, message: string) {
    super('INVALID_PARAMETERS', `${source}: ${message}`);
    this.source = source;
    this.tensor = tensor;
  }
}
