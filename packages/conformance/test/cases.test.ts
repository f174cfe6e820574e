/** The case list itself: size, names, coverage, and that its inputs are well conditioned. */
import { KERNEL_NAMES, createRandom } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import { fixtureModel } from '../src/cases/fixtures.js';
import { GREEDY, greedyCaseName, greedyPrompt } from '../src/cases/generate.js';
import { seedOf } from '../src/cases/inputs.js';
import { conformanceCases, reference, selectCases } from '../src/index.js';

describe('conformance cases', () => {
  const cases = conformanceCases();

  it('are at least 60, with unique names of the form kernel/…', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    for (const c of cases) expect(c.name.startsWith(`${c.kernel}/`), c.name).toBe(true);
  });

  it('cover every kernel of the contract, the whole model, cached decoding, generation and gradients', () => {
    const kernels = new Set(cases.map((c) => c.kernel));
    for (const kernel of [...KERNEL_NAMES, 'model', 'decode', 'generate', 'gradients'])
      expect(kernels.has(kernel as never), kernel).toBe(true);
  });

  it('cover the shapes that break naive code', () => {
    const names = cases.map((c) => c.name).join('\n');
    for (const needle of [
      'T1',
      'T7',
      'T33',
      'T129',
      'd16',
      'd32',
      'd64',
      'd128',
      'gqa2',
      'gqa4',
      'mha',
      'non-causal',
      'keyOffset',
      '±1e4',
      'per-token λ',
      'λ in [−1, 2]',
      'interleaved',
      'half',
      ' r32',
      'transposeA',
      'transposeB',
      'shared weight',
    ]) {
      expect(names, needle).toContain(needle);
    }
  });

  it('model-level cases run in float32 whatever dtype is asked for', () => {
    for (const c of cases)
      expect(c.float32Only, c.name).toBe(['model', 'decode', 'generate', 'gradients'].includes(c.kernel));
  });

  it('large cases are opt-in, and reach the sizes the default suite does not', () => {
    const large = cases.filter((c) => c.large);
    expect(large.length).toBeGreaterThanOrEqual(15);
    expect(selectCases().some((c) => c.large)).toBe(false);
    expect(selectCases(undefined, { large: true })).toHaveLength(cases.length);
    expect(selectCases('matmul/', { large: true }).filter((c) => c.large).length).toBeGreaterThanOrEqual(10);
    const names = large.map((c) => c.name).join('\n');
    for (const needle of ['M520 K45 N530', 'K1000', 'M3 K70 N300', 'cache 3000', 'cache 1600', 'T300']) {
      expect(names, needle).toContain(needle);
    }
  });

  it('filter by substring or RegExp (a /g RegExp included)', () => {
    expect(selectCases('diffAttention/v2').every((c) => c.name.startsWith('diffAttention/v2'))).toBe(true);
    expect(selectCases('diffAttention/v2').length).toBeGreaterThan(3);
    const global = /^softmax\//g;
    expect(selectCases(global).length).toBe(cases.filter((c) => c.kernel === 'softmax' && !c.large).length);
    expect(selectCases(global).length).toBe(selectCases(global).length);
  });

  it('greedy cases have every step decided by a margin far above float32 round-off', () => {
    for (const spec of GREEDY) {
      const { config, parameters } = fixtureModel(spec.fixture);
      const prompt = greedyPrompt(spec, createRandom(seedOf(greedyCaseName(spec))));
      const { margins } = reference.greedyContinuation(config, parameters, prompt, spec.maxNewTokens);
      expect(Math.min(...margins), greedyCaseName(spec)).toBeGreaterThan(1e-3);
    }
  });
});
