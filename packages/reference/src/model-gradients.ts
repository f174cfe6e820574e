/**
 * The gradient of a whole model's loss with respect to every parameter, in float64, by explicit
 * backpropagation as llm.c's train_gpt2.c does it: one forward that keeps every activation, then the
 * layers' backward functions called in reverse order by hand. It uses the reference kernels and their
 * backward (attention-backward.ts, rms-norm.ts, ...), never core's tape, so it checks the tape, the
 * gradient rules and the backend kernels together. The tests check it against finite differences of
 * modelLogits (the official formulation).
 *
 *   loss = mean over targets of crossEntropy(LM head(RMSNorm(h_L))),  h_{l+1} = y_l + SwiGLU(RMSNorm(y_l)),
 *   y_l = h_l + Attention(RMSNorm(h_l)),  h_0 = embedding(ids)
 */
import type { HostTensor, ModelConfig } from '@diff-transformer/core';
import { attentionBackward, diffAttentionBackward } from './attention-backward.js';
import { attention, diffAttention } from './attention.js';
import { add, sigmoid, swiglu, swigluBackward } from './elementwise.js';
import { embedding, embeddingBackward } from './embedding.js';
import { crossEntropy } from './loss.js';
import { linear, matmul } from './matmul.js';
import { referenceLambdaInit } from './model.js';
import { rmsNorm, rmsNormBackward } from './rms-norm.js';
import { modelRotaryRows } from './rope-scaling.js';
import { rotary, rotaryBackward } from './rotary.js';
import type { RefTensor } from './tensor.js';
import { refTensor, refZeros } from './tensor.js';

type Parameters = ReadonlyMap<string, HostTensor>;

/** Accumulated gradients by parameter name. */
class Gradients {
  readonly byName = new Map<string, RefTensor>();
  add(name: string, g: RefTensor): void {
    const before = this.byName.get(name);
    this.byName.set(name, before ? { shape: before.shape, data: before.data.map((x, i) => x + g.data[i]) } : g);
  }
}

/** x [..., in] · Wᵀ: the gradients for dy [..., out] — dx = dy·W, dW = dyᵀ·x over all rows. */
function linearBackward(x: RefTensor, weight: RefTensor, dy: RefTensor): { dx: RefTensor; dWeight: RefTensor } {
  const [out, inputs] = weight.shape;
  const rows = x.data.length / inputs;
  const x2 = refTensor(x.data, [rows, inputs]);
  const dy2 = refTensor(dy.data, [rows, out]);
  const dx = matmul(dy2, weight, { transposeA: false, transposeB: false });
  const dWeight = matmul(dy2, x2, { transposeA: true, transposeB: false });
  return { dx: refTensor(dx.data, x.shape), dWeight };
}

const view = (x: RefTensor, shape: readonly number[]) => refTensor(x.data, shape);
const sum = (a: RefTensor, b: RefTensor) => add(a, b);

/**
 * The mean cross-entropy of `targets` given `ids` (both [B][T]; targets equal to ignoreIndex count
 * nothing) and its gradient for every parameter of the model, by name.
 */
export function modelLossGradients(
  config: ModelConfig,
  parameters: Parameters,
  ids: ReadonlyArray<readonly number[]>,
  targets: ReadonlyArray<readonly number[]>,
  ignoreIndex = -100,
): { loss: number; gradients: Map<string, RefTensor> } {
  const param = (name: string): RefTensor => {
    const p = parameters.get(name);
    if (!p) throw new Error(`reference gradients: parameter '${name}' is missing`);
    return refTensor(p.data, p.shape);
  };
  const batch = ids.length;
  const tokens = ids[0].length;
  const rope = modelRotaryRows(config, [tokens]);
  const rotate = { layout: config.rope.layout, positionOffset: 0 } as const;
  const normEps = { eps: config.normEps };
  const grads = new Gradients();

  // ---- forward, keeping what each backward step needs ----
  const idTensor = refTensor(ids.flat(), [batch, tokens]);
  let h = embedding(param('embed_tokens.weight'), idTensor);
  const layers: Array<{
    h: RefTensor;
    x: RefTensor;
    attention: AttentionForward;
    y: RefTensor;
    z: RefTensor;
    gate: RefTensor;
    up: RefTensor;
    a: RefTensor;
  }> = [];
  for (let depth = 0; depth < config.numLayers; depth++) {
    const p = (name: string) => param(`layers.${depth}.${name}`);
    const x = rmsNorm(h, p('attn_norm.weight'), normEps);
    const att = attentionForward(config, depth, (n) => p(`attn.${n}`), x, rope, rotate);
    const y = add(h, att.out);
    const z = rmsNorm(y, p('ffn_norm.weight'), normEps);
    const gate = linear(z, p('ffn.gate_proj.weight'));
    const up = linear(z, p('ffn.up_proj.weight'));
    const a = swiglu(gate, up);
    layers.push({ h, x, attention: att, y, z, gate, up, a });
    h = add(y, linear(a, p('ffn.down_proj.weight')));
  }
  const final = rmsNorm(h, param('norm.weight'), normEps);
  const headName = config.tieWordEmbeddings ? 'embed_tokens.weight' : 'lm_head.weight';
  const logits = linear(final, param(headName));
  const flatTargets = targets.flat();
  const counted = flatTargets.filter((t) => t !== ignoreIndex).length;
  const ce = crossEntropy(
    refTensor(logits.data, [batch * tokens, config.vocabSize]),
    refTensor(flatTargets, [batch * tokens]),
    {
      ignoreIndex,
      scale: 1 / counted,
    },
  );

  // ---- backward, in reverse ----
  const head = linearBackward(final, param(headName), view(ce.dLogits, logits.shape));
  grads.add(headName, head.dWeight);
  const top = rmsNormBackward(h, param('norm.weight'), head.dx, normEps);
  grads.add('norm.weight', top.dWeight!);
  let dh = top.dx;
  for (let depth = config.numLayers - 1; depth >= 0; depth--) {
    const name = (n: string) => `layers.${depth}.${n}`;
    const p = (n: string) => param(name(n));
    const l = layers[depth];
    // h_{l+1} = y + down(swiglu(gate(z), up(z))), z = rmsNorm(y)
    const down = linearBackward(l.a, p('ffn.down_proj.weight'), dh);
    grads.add(name('ffn.down_proj.weight'), down.dWeight);
    const sw = swigluBackward(l.gate, l.up, down.dx);
    const gate = linearBackward(l.z, p('ffn.gate_proj.weight'), sw.dGate);
    const up = linearBackward(l.z, p('ffn.up_proj.weight'), sw.dUp);
    grads.add(name('ffn.gate_proj.weight'), gate.dWeight);
    grads.add(name('ffn.up_proj.weight'), up.dWeight);
    const ffnNorm = rmsNormBackward(l.y, p('ffn_norm.weight'), sum(gate.dx, up.dx), normEps);
    grads.add(name('ffn_norm.weight'), ffnNorm.dWeight!);
    const dy = sum(dh, ffnNorm.dx);
    // y = h + attention(x), x = rmsNorm(h)
    const dx = attentionBackwardOf(
      config,
      depth,
      (n) => p(`attn.${n}`),
      l.x,
      l.attention,
      dy,
      rope,
      rotate,
      (n, g) => grads.add(name(`attn.${n}`), g),
    );
    const attnNorm = rmsNormBackward(l.h, p('attn_norm.weight'), dx, normEps);
    grads.add(name('attn_norm.weight'), attnNorm.dWeight!);
    dh = sum(dy, attnNorm.dx);
  }
  grads.add('embed_tokens.weight', embeddingBackward(idTensor, dh, config.vocabSize));
  return { loss: ce.loss.data[0], gradients: grads.byName };
}

const refScale = (t: RefTensor, factor: number): RefTensor => ({
  shape: t.shape,
  data: t.data.map((value) => value * factor),
});

/** DIFF V1's fused per-head norm (null without one, subLayerNorm null) and its weight (null if none). */
function diffNorm(
  config: ModelConfig,
  depth: number,
  p: (name: string) => RefTensor,
): { norm: { eps: number; outputScale: number } | null; subln: RefTensor | null } {
  const subLayerNorm = config.subLayerNorm;
  if (!subLayerNorm) return { norm: null, subln: null };
  return {
    norm: { eps: subLayerNorm.eps, outputScale: 1 - referenceLambdaInit(depth, config) },
    subln: subLayerNorm.affine ? p('subln.weight') : null,
  };
}

/** What an attention module's forward keeps for its backward. */
interface AttentionForward {
  readonly out: RefTensor;
  readonly q: RefTensor;
  readonly k: RefTensor;
  readonly v: RefTensor;
  readonly heads: RefTensor;
  /** DIFF V1: λ of the layer and the two exponentials; V2: σ(x·W_λ) [B, T, H]. */
  readonly lambda: RefTensor;
  readonly exps: readonly [number, number];
}

type Rope = { cos: RefTensor; sin: RefTensor };
type RotaryOptions = { layout: 'interleaved' | 'half'; positionOffset: number };

function attentionForward(
  config: ModelConfig,
  depth: number,
  p: (name: string) => RefTensor,
  x: RefTensor,
  rope: Rope,
  rotate: RotaryOptions,
): AttentionForward {
  const { numHeads: h, numKvHeads: hkv, headDim: d } = config;
  const [batch, tokens] = x.shape;
  const mask = { causal: true, keyOffset: 0, keyLength: tokens, scale: 1 / Math.sqrt(d) };
  const project = (weight: string, heads: number, width: number) =>
    view(linear(x, p(weight)), [batch, tokens, heads, width]);
  switch (config.attention) {
    case 'differential': {
      const q = rotary(project('q_proj.weight', 2 * h, d), rope.cos, rope.sin, rotate);
      const k = rotary(project('k_proj.weight', 2 * hkv, d), rope.cos, rope.sin, rotate);
      const v = project('v_proj.weight', hkv, 2 * d);
      const dot = (a: RefTensor, b: RefTensor) => a.data.reduce((s, value, i) => s + value * b.data[i], 0);
      const lambdaInit = referenceLambdaInit(depth, config);
      const scalar = config.lambdaParameterization === 'scalar';
      const exps = scalar
        ? ([0, 0] as const)
        : ([Math.exp(dot(p('lambda_q1'), p('lambda_k1'))), Math.exp(dot(p('lambda_q2'), p('lambda_k2')))] as const);
      const lambda = refTensor(new Array(h).fill(scalar ? p('lambda').data[0] : exps[0] - exps[1] + lambdaInit), [h]);
      const { norm, subln } = diffNorm(config, depth, p);
      const attended = diffAttention(q, k, v, lambda, subln, { ...mask, norm });
      // Without the per-head norm, × (1 − λinit) comes after the kernel.
      const heads = norm ? attended : refScale(attended, 1 - lambdaInit);
      return {
        out: linear(view(heads, [batch, tokens, h * 2 * d]), p('out_proj.weight')),
        q,
        k,
        v,
        heads,
        lambda,
        exps,
      };
    }
    case 'differential-v2': {
      const q = rotary(project('q_proj.weight', 2 * h, d), rope.cos, rope.sin, rotate);
      const k = rotary(project('k_proj.weight', hkv, d), rope.cos, rope.sin, rotate);
      const v = project('v_proj.weight', hkv, d);
      const lambda = view(sigmoid(linear(x, p('lambda_proj.weight'))), [batch, tokens, h]);
      const heads = diffAttention(q, k, v, lambda, null, { ...mask, norm: null });
      return {
        out: linear(view(heads, [batch, tokens, h * d]), p('out_proj.weight')),
        q,
        k,
        v,
        heads,
        lambda,
        exps: [0, 0],
      };
    }
    case 'standard': {
      const q = rotary(project('q_proj.weight', h, d), rope.cos, rope.sin, rotate);
      const k = rotary(project('k_proj.weight', hkv, d), rope.cos, rope.sin, rotate);
      const v = project('v_proj.weight', hkv, d);
      const heads = attention(q, k, v, mask);
      return {
        out: linear(view(heads, [batch, tokens, h * d]), p('out_proj.weight')),
        q,
        k,
        v,
        heads,
        lambda: refZeros([0]),
        exps: [0, 0],
      };
    }
  }
}

/** The backward of one attention module: adds its parameters' gradients, returns dx. */
function attentionBackwardOf(
  config: ModelConfig,
  depth: number,
  p: (name: string) => RefTensor,
  x: RefTensor,
  f: AttentionForward,
  dOut: RefTensor,
  rope: Rope,
  rotate: RotaryOptions,
  addGradient: (name: string, g: RefTensor) => void,
): RefTensor {
  const [batch, tokens] = x.shape;
  const { numHeads: h, headDim: d } = config;
  const mask = { causal: true, keyOffset: 0, keyLength: tokens, scale: 1 / Math.sqrt(d) };
  const outProj = linearBackward(
    view(f.heads, [batch, tokens, f.heads.data.length / (batch * tokens)]),
    p('out_proj.weight'),
    dOut,
  );
  addGradient('out_proj.weight', outProj.dWeight);
  const dHeads = view(outProj.dx, f.heads.shape);
  let dq: RefTensor;
  let dk: RefTensor;
  let dv: RefTensor;
  let dx = refZeros(x.shape);
  switch (config.attention) {
    case 'differential': {
      const { norm, subln } = diffNorm(config, depth, p);
      const dAttended = norm ? dHeads : refScale(dHeads, 1 - referenceLambdaInit(depth, config));
      const g = diffAttentionBackward(f.q, f.k, f.v, f.lambda, subln, dAttended, { ...mask, norm });
      if (subln) addGradient('subln.weight', g.dNormWeight!);
      // One λ for every head: its gradient is the sum over heads.
      const dLambda = g.dLambda.data.reduce((s, value) => s + value, 0);
      if (config.lambdaParameterization === 'scalar') {
        addGradient('lambda', refTensor([dLambda], [1]));
      } else {
        // λ = e₁ − e₂ + λinit with e₁ = exp(λq1·λk1), e₂ = exp(λq2·λk2).
        addGradient('lambda_q1', refScale(p('lambda_k1'), dLambda * f.exps[0]));
        addGradient('lambda_k1', refScale(p('lambda_q1'), dLambda * f.exps[0]));
        addGradient('lambda_q2', refScale(p('lambda_k2'), -dLambda * f.exps[1]));
        addGradient('lambda_k2', refScale(p('lambda_q2'), -dLambda * f.exps[1]));
      }
      ({ dq, dk, dv } = g);
      break;
    }
    case 'differential-v2': {
      const g = diffAttentionBackward(f.q, f.k, f.v, f.lambda, null, dHeads, { ...mask, norm: null });
      // λ = σ(z), z = x·W_λᵀ: dz = dλ·σ·(1 − σ).
      const dz = {
        shape: [batch, tokens, h],
        data: g.dLambda.data.map((value, i) => value * f.lambda.data[i] * (1 - f.lambda.data[i])),
      };
      const lambdaProj = linearBackward(x, p('lambda_proj.weight'), dz);
      addGradient('lambda_proj.weight', lambdaProj.dWeight);
      dx = add(dx, lambdaProj.dx);
      ({ dq, dk, dv } = g);
      break;
    }
    case 'standard': {
      ({ dq, dk, dv } = attentionBackward(f.q, f.k, f.v, dHeads, mask));
      break;
    }
  }
  for (const [weight, gradient] of [
    ['q_proj.weight', rotaryBackward(dq, rope.cos, rope.sin, rotate)],
    ['k_proj.weight', rotaryBackward(dk, rope.cos, rope.sin, rotate)],
    ['v_proj.weight', dv],
  ] as const) {
    const flat = view(gradient, [batch, tokens, gradient.data.length / (batch * tokens)]);
    const g = linearBackward(x, p(weight), flat);
    addGradient(weight, g.dWeight);
    dx = add(dx, g.dx);
  }
  return dx;
}
