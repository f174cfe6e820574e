/**
 * AdamW (Loshchilov & Hutter 2019, as torch.optim.AdamW) over a model's named parameters, with two
 * parameter groups as is usual for transformers: weight decay on the projection matrices (and an untied
 * LM head), none on norm weights, DIFF's λ (V1's lambda_q1…lambda_k2 or scalar lambda, V2's lambda_proj) and
 * the embeddings. The moments live on the device; each step is one in-place `adamw` kernel per
 * parameter, and nothing is read back.
 */
import { keep, ops, tensor, zeros, type Tensor } from '@diff-transformer/core';
import { TrainingConfigError } from './errors.js';

export interface AdamWOptions {
  /** Default 0.9. */
  readonly beta1?: number;
  /** Default 0.95 (the GPT and Llama recipes). */
  readonly beta2?: number;
  /** Default 1e-8. */
  readonly eps?: number;
  /** Decoupled weight decay of the decayed group; default 0.1. */
  readonly weightDecay?: number;
}

export type ResolvedAdamWOptions = Required<AdamWOptions>;

export function resolveAdamW(options: AdamWOptions = {}): ResolvedAdamWOptions {
  const resolved = {
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.95,
    eps: options.eps ?? 1e-8,
    weightDecay: options.weightDecay ?? 0.1,
  };
  const inUnit = (name: string, x: number) => {
    if (!(x >= 0 && x < 1)) throw new TrainingConfigError(name, 'a number in [0, 1)', x);
  };
  inUnit('beta1', resolved.beta1);
  inUnit('beta2', resolved.beta2);
  if (!(resolved.eps > 0) || !Number.isFinite(resolved.eps))
    throw new TrainingConfigError('eps', 'a finite number > 0', resolved.eps);
  if (!(resolved.weightDecay >= 0) || !Number.isFinite(resolved.weightDecay))
    throw new TrainingConfigError('weightDecay', 'a finite number ≥ 0', resolved.weightDecay);
  return resolved;
}

/** Whether a parameter is exempt from weight decay: norms, λ (its vectors or the scalar) and embeddings. */
export function isNoDecayParameter(name: string): boolean {
  return (
    name.endsWith('norm.weight') ||
    name.endsWith('subln.weight') ||
    /(^|\.)lambda(_q1|_k1|_q2|_k2)?$/.test(name) ||
    name.endsWith('lambda_proj.weight') ||
    name === 'embed_tokens.weight'
  );
}

/** The optimiser's moments of one parameter, on the host (a checkpoint's content). */
export interface HostMoments {
  readonly m: Float32Array;
  readonly v: Float32Array;
}

export class AdamW {
  readonly options: ResolvedAdamWOptions;
  /** Parameter names by group, in the model's order. */
  readonly groups: { readonly decay: readonly string[]; readonly noDecay: readonly string[] };
  readonly #parameters: ReadonlyMap<string, Tensor>;
  readonly #moments = new Map<string, { m: Tensor; v: Tensor }>();
  #step = 0;

  constructor(parameters: ReadonlyMap<string, Tensor>, options: AdamWOptions = {}) {
    this.options = resolveAdamW(options);
    this.#parameters = parameters;
    const decay: string[] = [];
    const noDecay: string[] = [];
    for (const [name, p] of parameters) {
      (isNoDecayParameter(name) ? noDecay : decay).push(name);
      this.#moments.set(name, {
        m: keep(zeros(p.shape, { backend: p.backend, dtype: 'float32' })),
        v: keep(zeros(p.shape, { backend: p.backend, dtype: 'float32' })),
      });
    }
    this.groups = { decay, noDecay };
  }

  /** Steps taken so far (the bias corrections' t of the last step). */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * One update of every parameter from its gradient. `gradScale` multiplies the gradients first (the
   * kernel fuses it): 1/accumulated micro-batches times the clipping factor.
   */
  step(grads: ReadonlyMap<string, Tensor>, learningRate: number, gradScale = 1): void {
    const step = this.#step + 1;
    for (const [name, param] of this.#parameters) {
      const grad = grads.get(name);
      if (!grad) throw new TrainingConfigError('gradients', `one for every parameter`, `none for '${name}'`);
      const { m, v } = this.#moments.get(name)!;
      ops.adamw(param, grad, m, v, {
        learningRate,
        beta1: this.options.beta1,
        beta2: this.options.beta2,
        eps: this.options.eps,
        weightDecay: isNoDecayParameter(name) ? 0 : this.options.weightDecay,
        step,
        gradScale,
      });
    }
    this.#step = step;
  }

  /** The moments read back to the host, by parameter name (for a checkpoint). */
  async hostState(): Promise<{ step: number; moments: Map<string, HostMoments> }> {
    const moments = new Map<string, HostMoments>();
    for (const [name, { m, v }] of this.#moments) {
      moments.set(name, { m: (await m.data()) as Float32Array, v: (await v.data()) as Float32Array });
    }
    return { step: this.#step, moments };
  }

  /** Restores what hostState gave: the step count and every moment, bit for bit. */
  loadHostState(state: { step: number; moments: ReadonlyMap<string, HostMoments> }): void {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new TrainingConfigError('optimizer step', 'an integer ≥ 0', state.step);
    const uploads = new Map<string, { m: Tensor; v: Tensor }>();
    try {
      for (const [name, param] of this.#parameters) {
        const host = state.moments.get(name);
        if (!host)
          throw new TrainingConfigError('optimizer state', `moments for every parameter`, `none for '${name}'`);
        for (const [which, data] of [
          ['m', host.m],
          ['v', host.v],
        ] as const) {
          if (data.length !== param.size) {
            throw new TrainingConfigError(
              `optimizer state '${name}' ${which}`,
              `${param.size} values (the parameter's size)`,
              data.length,
            );
          }
        }
        const upload = (data: Float32Array) => keep(tensor(data, param.shape, { backend: param.backend }));
        uploads.set(name, { m: upload(host.m), v: upload(host.v) });
      }
      for (const name of state.moments.keys()) {
        if (!this.#parameters.has(name))
          throw new TrainingConfigError('optimizer state', 'moments only for the model’s parameters', `'${name}'`);
      }
    } catch (error) {
      for (const { m, v } of uploads.values()) {
        m.dispose();
        v.dispose();
      }
      throw error;
    }
    for (const [name, fresh] of uploads) {
      const old = this.#moments.get(name)!;
      old.m.dispose();
      old.v.dispose();
      this.#moments.set(name, fresh);
    }
    this.#step = state.step;
  }

  dispose(): void {
    for (const { m, v } of this.#moments.values()) {
      m.dispose();
      v.dispose();
    }
    this.#moments.clear();
  }
}
