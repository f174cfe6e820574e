/**
 * The learning-rate schedule: linear warm-up from 0 to the peak, then a cosine or linear decay to a
 * floor at the last step (as nanoGPT and most LLM recipes do), or a constant rate.
 */
import { TrainingConfigError } from './errors.js';

export type DecayKind = 'cosine' | 'linear' | 'constant';
export const DECAY_KINDS: readonly DecayKind[] = ['cosine', 'linear', 'constant'];

export interface ScheduleOptions {
  /** The peak rate, reached at the end of the warm-up. */
  readonly learningRate: number;
  /** Steps of linear warm-up (0: start at the peak). */
  readonly warmupSteps: number;
  /** The step the decay ends at (the run's length). */
  readonly totalSteps: number;
  readonly decay: DecayKind;
  /** The floor the decay ends at, as a fraction of the peak (default 0.1). */
  readonly minLearningRateRatio?: number;
}

export function validateSchedule(options: ScheduleOptions): void {
  const { learningRate, warmupSteps, totalSteps, decay } = options;
  const ratio = options.minLearningRateRatio ?? 0.1;
  if (!(learningRate > 0) || !Number.isFinite(learningRate))
    throw new TrainingConfigError('learningRate', 'a finite number > 0', learningRate);
  if (!Number.isInteger(totalSteps) || totalSteps < 1)
    throw new TrainingConfigError('steps', 'an integer ≥ 1', totalSteps);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new TrainingConfigError('warmupSteps', 'an integer ≥ 0', warmupSteps);
  if (!DECAY_KINDS.includes(decay)) throw new TrainingConfigError('decay', DECAY_KINDS.join(' | '), decay);
  if (!(ratio >= 0 && ratio <= 1)) throw new TrainingConfigError('minLearningRateRatio', 'a number in [0, 1]', ratio);
}

/** The rate of 1-based step `step`. Past totalSteps the floor holds. */
export function learningRateAt(step: number, options: ScheduleOptions): number {
  const { learningRate: peak, warmupSteps, totalSteps, decay } = options;
  const floor = peak * (options.minLearningRateRatio ?? 0.1);
  if (step <= warmupSteps) return (peak * step) / warmupSteps;
  if (decay === 'constant') return peak;
  const span = totalSteps - warmupSteps;
  const progress = span <= 0 ? 1 : Math.min(1, (step - warmupSteps) / span);
  if (decay === 'linear') return peak - (peak - floor) * progress;
  return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
