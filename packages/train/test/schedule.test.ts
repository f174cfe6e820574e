import { learningRateAt, TrainingConfigError, validateSchedule } from '@diff-transformer/train';
import { describe, expect, it } from 'vitest';

describe('learning-rate schedule', () => {
  const base = { learningRate: 1e-3, warmupSteps: 10, totalSteps: 110, minLearningRateRatio: 0.1 };

  it('warms up linearly from lr/warmup to the peak', () => {
    expect(learningRateAt(1, { ...base, decay: 'cosine' })).toBeCloseTo(1e-4, 15);
    expect(learningRateAt(5, { ...base, decay: 'cosine' })).toBeCloseTo(5e-4, 15);
    expect(learningRateAt(10, { ...base, decay: 'cosine' })).toBeCloseTo(1e-3, 15);
  });

  it('cosine: halfway between peak and floor at mid-decay, the floor at the last step and after', () => {
    const s = { ...base, decay: 'cosine' as const };
    expect(learningRateAt(60, s)).toBeCloseTo((1e-3 + 1e-4) / 2, 15);
    expect(learningRateAt(110, s)).toBeCloseTo(1e-4, 15);
    expect(learningRateAt(500, s)).toBeCloseTo(1e-4, 15);
    for (let step = 11; step < 110; step++) expect(learningRateAt(step + 1, s)).toBeLessThan(learningRateAt(step, s));
  });

  it('linear decays by equal steps; constant stays at the peak', () => {
    const s = { ...base, decay: 'linear' as const };
    expect(learningRateAt(35, s) - learningRateAt(36, s)).toBeCloseTo(
      learningRateAt(85, s) - learningRateAt(86, s),
      15,
    );
    expect(learningRateAt(110, s)).toBeCloseTo(1e-4, 15);
    expect(learningRateAt(100, { ...base, decay: 'constant' })).toBe(1e-3);
  });

  it('without warm-up the first step is at the peak', () => {
    expect(learningRateAt(1, { ...base, warmupSteps: 0, decay: 'cosine' })).toBeCloseTo(1e-3, 6);
  });

  it('refuses what it cannot schedule', () => {
    expect(() => validateSchedule({ ...base, decay: 'cosine', totalSteps: 0 })).toThrow(TrainingConfigError);
    expect(() => validateSchedule({ ...base, decay: 'cosine', learningRate: -1 })).toThrow(/learningRate/);
    // @ts-expect-error: a decay the type does not have, as untyped JSON may bring
    expect(() => validateSchedule({ ...base, decay: 'step' })).toThrow(/cosine \| linear \| constant/);
  });
});
