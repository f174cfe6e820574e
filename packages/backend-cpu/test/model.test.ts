/**
 * The whole model on the CPU backend: nothing leaks from a forward pass, and decoding token by token
 * through the KV cache (cacheWrite, keyOffset/keyLength against a larger cache) gives the logits of
 * one full forward pass, for every attention variant.
 */
import {
  DiffTransformer,
  activeBackend,
  generate,
  memory,
  setBackend,
  tidy,
  type AttentionKind,
} from '@diff-transformer/core';
import { createCpuBackend, type CpuBackend } from '@diff-transformer/backend-cpu';
import '@diff-transformer/backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose } from './helpers.js';

const kinds: AttentionKind[] = ['differential', 'differential-v2', 'standard'];

const config = (attention: AttentionKind) => ({
  vocabSize: 97,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  attention,
  maxPositions: 64,
});

beforeAll(async () => {
  await setBackend('cpu');
});

describe.each(kinds)('%s model', (attention) => {
  it('returns every storage after a forward pass inside tidy', async () => {
    const model = DiffTransformer.create(config(attention), { seed: 1, perturbNorms: 0.1 });
    const backend = activeBackend() as CpuBackend;
    const before = memory('cpu');
    const liveBefore = backend.liveStorages;
    const logits = tidy(() =>
      model.forward([
        [1, 2, 3, 4, 5],
        [6, 7, 8, 9, 10],
      ]),
    );
    expect(logits.shape).toEqual([2, 5, 97]);
    const values = await logits.data();
    expect(values.every(Number.isFinite)).toBe(true);
    expect(memory('cpu').liveStorages).toBe(before.liveStorages + 1);
    logits.dispose();
    expect(memory('cpu')).toEqual(before);
    expect(backend.liveStorages).toBe(liveBefore);
    model.dispose();
  });

  it('decoding through the KV cache matches one full forward pass', async () => {
    const model = DiffTransformer.create(config(attention), { seed: 2, perturbNorms: 0.1, std: 0.1 });
    const ids = [5, 17, 3, 88, 42, 61, 7, 29, 30];
    const full = tidy(() => model.forward([ids]));
    const expected = (await full.data()) as Float32Array;
    full.dispose();

    const cache = model.createCache(1, 16);
    const steps: Float32Array[] = [];
    // A 4-token prefill, then one token at a time.
    const prefill = model.forward([ids.slice(0, 4)], { cache });
    steps.push((await prefill.data()) as Float32Array);
    prefill.dispose();
    for (const id of ids.slice(4)) {
      const step = model.forward([[id]], { cache });
      steps.push((await step.data()) as Float32Array);
      step.dispose();
    }
    cache.dispose();
    const decoded = new Float32Array(expected.length);
    let offset = 0;
    for (const s of steps) {
      decoded.set(s, offset);
      offset += s.length;
    }
    expectClose(decoded, expected, 1e-5, 1e-4);
    model.dispose();
  });
});

describe('a KV cache that grows', () => {
  it.each(kinds)('%s: decoding through a cache that starts at 2 tokens matches one full forward pass', async (kind) => {
    const model = DiffTransformer.create(config(kind), { seed: 2, perturbNorms: 0.1, std: 0.1 });
    const ids = [5, 17, 3, 88, 42, 61, 7, 29, 30];
    const full = tidy(() => model.forward([ids]));
    const expected = await full.dataFloat();
    full.dispose();
    const before = memory('cpu');
    const cache = model.createCache(1, 2, { maxCapacity: ids.length });
    const capacities: number[] = [];
    const steps: Float32Array[] = [];
    for (const chunk of [ids.slice(0, 3), ...ids.slice(3).map((id) => [id])]) {
      const logits = model.forward([chunk], { cache });
      steps.push(await logits.dataFloat());
      logits.dispose();
      capacities.push(cache.capacity);
    }
    // Doubling from 2, never past maxCapacity.
    expect(capacities).toEqual([4, 4, 8, 8, 8, 8, 9]);
    expect(() => model.forward([[1]], { cache })).toThrow(/at most 0 tokens \(cache maxCapacity 9\)/);
    cache.dispose();
    expect(memory('cpu')).toEqual(before);
    expectClose(Float32Array.from(steps.flatMap((x) => [...x])), expected, 1e-5, 1e-4);
    model.dispose();
  });
});

describe('a model on another backend', () => {
  it('to(backend) copies it there; the original stays on its backend, setBackend or not', async () => {
    const typescript = await createCpuBackend({ engine: 'typescript' });
    const model = DiffTransformer.create(config('differential'), { seed: 4, backend: typescript });
    await setBackend('cpu');
    expect(model.backend).toBe(typescript); // made there, stays there
    const moved = await model.to('cpu');
    expect(moved.backend).toBe(activeBackend());
    expect(moved.config).toEqual(model.config);
    const logits = async (m: DiffTransformer) => {
      const out = tidy(() => m.forward([[1, 2, 3]]));
      const values = await out.dataFloat();
      out.dispose();
      return values;
    };
    const expected = await logits(model);
    model.dispose();
    expectClose(await logits(moved), expected, 1e-5, 1e-4);
    await expect(model.to('cpu')).rejects.toThrow(/a live model/);
    (await moved.to(typescript)).dispose();
    moved.dispose();
    typescript.dispose();
  });
});

describe('generation', () => {
  it('holds memory for the tokens made so far, not for maxNewTokens', async () => {
    const model = DiffTransformer.create(config('differential'), { seed: 3 });
    const before = memory('cpu').bytes;
    // Keys and values of one token, all layers: k [2·Hkv, d] and v [Hkv, 2d] floats per layer.
    const perToken = model.config.numLayers * 2 * (2 * model.config.numKvHeads * model.config.headDim) * 4;
    const tokens = generate(model, [1, 2, 3], { maxNewTokens: 1_000_000, greedy: true });
    await tokens.next();
    const held = memory('cpu').bytes - before;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(1000 * perToken);
    await tokens.return();
    expect(memory('cpu').bytes).toBe(before);
    model.dispose();
  });

  it('greedy generation is deterministic and leaks nothing', async () => {
    const model = DiffTransformer.create(config('differential'), { seed: 3 });
    const before = memory('cpu');
    const run = async () => {
      const out: number[] = [];
      for await (const id of generate(model, [1, 2, 3], { maxNewTokens: 6 })) out.push(id);
      return out;
    };
    const first = await run();
    expect(first).toHaveLength(6);
    expect(await run()).toEqual(first);
    expect(memory('cpu')).toEqual(before);
    model.dispose();
  });
});
