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
import type { CpuBackend } from '@diff-transformer/backend-cpu';
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

describe('generation', () => {
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
