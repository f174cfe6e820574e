import { parameterCount, resolveConfig } from '@diff-transformer/core';
import {
  diffLlamaProblems,
  matchedModel,
  pairCounts,
  parsePreset,
  PRESETS,
  presetModelConfig,
  TrainingConfigError,
} from '@diff-transformer/train';
import { describe, expect, it } from 'vitest';

describe('size presets', () => {
  it.each(Object.values(PRESETS))(
    '$name: the baseline has twice the heads of half the width, and matches in parameters',
    (preset) => {
      const diff = presetModelConfig(preset, 'differential', 256);
      const base = presetModelConfig(preset, 'standard', 256);
      expect(base.numHeads).toBe(2 * diff.numHeads);
      expect(base.headDim).toBe(diff.headDim);
      // Same projections; DIFF adds its four λ vectors of width d per layer (no subln weight in the presets).
      expect(parameterCount(diff) - parameterCount(base)).toBe(4 * diff.headDim * diff.numLayers);
      expect(pairCounts(preset, 256)).toEqual({ differential: parameterCount(diff), standard: parameterCount(base) });
      // The DIFF model of every preset exports to transformers as it is.
      expect(diffLlamaProblems(diff)).toEqual([]);
      const v2 = presetModelConfig(preset, 'differential-v2', 256);
      expect(v2.numHeads).toBe(base.numHeads);
    },
  );

  it('matches a GQA model head for head', () => {
    const base = resolveConfig(
      matchedModel({ vocabSize: 256, hiddenSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2 }, 'standard'),
    );
    expect(base).toMatchObject({ numHeads: 8, numKvHeads: 4, headDim: 16 });
  });

  it('reads a preset file and reports a bad one by name', () => {
    const preset = parsePreset(
      { model: { hiddenSize: 64, numLayers: 1, numHeads: 2 }, training: { steps: 5 } },
      'p.json',
    );
    expect(preset.training.steps).toBe(5);
    expect(preset.training.batchSize).toBe(PRESETS.tiny.training.batchSize);
    expect(() => parsePreset([], 'p.json')).toThrow(TrainingConfigError);
    expect(() => parsePreset({ model: { hiddenSize: 63, numLayers: 1, numHeads: 2 } }, 'bad.json')).toThrow(
      /bad\.json: model/,
    );
    const literal = parsePreset(
      { model: { hiddenSize: 64, numLayers: 1, numHeads: 4, attention: 'standard' } },
      'l.json',
    );
    expect(presetModelConfig(literal, undefined, 256).attention).toBe('standard');
    expect(() => presetModelConfig(literal, 'differential', 256)).toThrow(/preset's own attention/);
  });
});
