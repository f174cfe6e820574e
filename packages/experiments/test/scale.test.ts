import { parameterCount, resolveConfig } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import { parseScale, SCALES, variantConfig, VARIANTS } from '../src/index.js';

describe('scales and variants', () => {
  it('every built-in scale is valid and names lm sizes for outliers and ablations', () => {
    for (const scale of Object.values(SCALES)) {
      expect(() => parseScale(scale, scale.name)).not.toThrow();
      const names = scale.lm.sizes.map((s) => s.name);
      expect(names).toContain(scale.outliers.size);
      expect(names).toContain(scale.ablations.size);
    }
  });

  it('a scale file replaces the sections it gives, field by field, and names what is wrong', () => {
    const mine = parseScale({ name: 'mine', seeds: 5, lm: { finalEvalTokens: 1024 } }, 'mine.json');
    expect(mine.seeds).toBe(5);
    expect(mine.lm.finalEvalTokens).toBe(1024);
    expect(mine.lm.sizes).toEqual(SCALES.tiny.lm.sizes);
    expect(mine.retrieval).toEqual(SCALES.tiny.retrieval);
    expect(() => parseScale([], 'a.json')).toThrow(/a\.json: the document: expected a JSON object/);
    expect(() => parseScale({ lm: 3 }, 'b.json')).toThrow(/b\.json: lm: expected an object, got 3/);
    expect(() => parseScale({ seeds: 0 }, 'c.json')).toThrow(/c\.json: seeds: expected an integer ≥ 1, got 0/);
    expect(() => parseScale({ outliers: { size: 'd7-L7' } }, 'd.json')).toThrow(
      /d\.json: outliers\.size: expected one of the lm sizes \(d64-L2, d96-L3\), got "d7-L7"/,
    );
  });

  it('variants: parameter-matched pairs (DIFF adds only λ and its norm weight), ablations change one thing', () => {
    const model = { hiddenSize: 64, numLayers: 2, numHeads: 2 };
    const config = Object.fromEntries(VARIANTS.map((v) => [v, variantConfig(model, v, 256)]));
    expect(config.differential).toMatchObject({ attention: 'differential', numHeads: 2, headDim: 16 });
    expect(config.standard).toMatchObject({ attention: 'standard', numHeads: 4, headDim: 16 });
    expect(config['differential-v2']).toMatchObject({ attention: 'differential-v2', numHeads: 4, headDim: 16 });
    // λ: 4 vectors of d = 16, subln weight 2d = 32, per layer.
    expect(parameterCount(config.differential) - parameterCount(config.standard)).toBe(2 * (4 * 16 + 32));
    expect(config['no-subln']).toEqual(resolveConfig({ ...config.differential, subLayerNorm: null }));
    expect(config['lambda-init-0.8']).toEqual(resolveConfig({ ...config.differential, lambdaInit: 0.8 }));
    expect(config['scalar-lambda']).toEqual(
      resolveConfig({ ...config.differential, lambdaParameterization: 'scalar' }),
    );
  });
});
