import { memory, setBackend, tensor } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { AdamW, clipFactor, GradientAccumulator, globalGradNorm, isNoDecayParameter } from '@diff-transformer/train';
import { beforeAll, describe, expect, it } from 'vitest';
import { microModel } from './helpers.js';

beforeAll(async () => {
  await setBackend('cpu');
});

describe('AdamW parameter groups', () => {
  it('decays projection matrices and the LM head, not norms, λ vectors or embeddings', () => {
    const model = microModel();
    const v2 = microModel(1, { attention: 'differential-v2' });
    try {
      const { decay, noDecay } = new AdamW(model.parameters).groups;
      expect(noDecay).toEqual(
        expect.arrayContaining([
          'embed_tokens.weight',
          'norm.weight',
          'layers.0.attn_norm.weight',
          'layers.0.ffn_norm.weight',
          'layers.1.attn.lambda_q1',
          'layers.1.attn.lambda_k2',
        ]),
      );
      expect(decay).toEqual(
        expect.arrayContaining(['lm_head.weight', 'layers.0.attn.q_proj.weight', 'layers.1.ffn.down_proj.weight']),
      );
      expect(decay.some(isNoDecayParameter)).toBe(false);
      expect(decay.length + noDecay.length).toBe(model.parameters.size);
      expect(isNoDecayParameter('layers.0.attn.lambda_proj.weight')).toBe(true);
      // The scalar λ of the ablation is λ too, not a projection.
      expect(isNoDecayParameter('layers.3.attn.lambda')).toBe(true);
      expect(isNoDecayParameter('layers.3.attn.lambda_x')).toBe(false);
      expect([...v2.parameters.keys()].filter(isNoDecayParameter)).toContain('layers.0.attn.lambda_proj.weight');
    } finally {
      model.dispose();
      v2.dispose();
    }
  });

  it('one step matches torch.optim.AdamW computed by hand, with the decay only where it belongs', async () => {
    const p = tensor([0.5, -1, 2], [3]);
    const n = tensor([1, 1, 1], [3]);
    const parameters = new Map([
      ['layers.0.attn.q_proj.weight', p],
      ['norm.weight', n],
    ]);
    const optimizer = new AdamW(parameters, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5 });
    const g = [0.1, -0.2, 0.3];
    const grads = new Map([
      ['layers.0.attn.q_proj.weight', tensor(g, [3])],
      ['norm.weight', tensor(g, [3])],
    ]);
    optimizer.step(grads, 0.01, 2);
    // Step 1: m̂ = g', v̂ = g'² (bias-corrected), so the update is lr·g'/(|g'| + eps) = ±lr.
    const expected = (x: number, gi: number, decay: number) =>
      x * (1 - 0.01 * decay) - (0.01 * 2 * gi) / (Math.abs(2 * gi) + 1e-8);
    const decayed = Array.from(await p.data());
    const plain = Array.from(await n.data());
    for (const [i, x] of [0.5, -1, 2].entries()) expect(decayed[i]).toBeCloseTo(expected(x, g[i], 0.5), 6);
    for (const [i, x] of plain.entries()) expect(x).toBeCloseTo(expected(1, g[i], 0), 6);
    expect(optimizer.stepCount).toBe(1);
    const state = await optimizer.hostState();
    for (const [i, m] of state.moments.get('norm.weight')!.m.entries()) expect(m).toBeCloseTo(0.1 * 2 * g[i], 7);
    optimizer.dispose();
    for (const t of [p, n, ...grads.values()]) t.dispose();
  });
});

describe('clipping and accumulation', () => {
  it('the global norm covers every gradient; the factor clips it to maxNorm, or leaves it', async () => {
    const grads = new Map([
      ['a', tensor([3, 0], [2])],
      ['b', tensor([0, 4, 0], [3])],
    ]);
    expect(await globalGradNorm(grads)).toBeCloseTo(5, 6);
    expect(await globalGradNorm(grads, 0.5)).toBeCloseTo(2.5, 6);
    expect(clipFactor(5, 1)).toBeCloseTo(0.2, 6);
    expect(clipFactor(0.5, 1)).toBe(1);
    expect(clipFactor(5, 0)).toBe(1);
    expect(clipFactor(Number.NaN, 1)).toBeNaN();
    for (const g of grads.values()) g.dispose();
  });

  it('sums micro-batch gradients on the device and frees what it replaced', async () => {
    const before = memory('cpu').liveStorages;
    const accumulator = new GradientAccumulator();
    accumulator.add(new Map([['w', tensor([1, 2], [2])]]));
    accumulator.add(new Map([['w', tensor([10, 20], [2])]]));
    accumulator.add(new Map([['w', tensor([100, 200], [2])]]));
    const { grads, count } = accumulator.take();
    expect(count).toBe(3);
    expect(Array.from(await grads.get('w')!.data())).toEqual([111, 222]);
    for (const g of grads.values()) g.dispose();
    accumulator.dispose();
    expect(memory('cpu').liveStorages).toBe(before);
  });
});
