/**
 * The series of a loss chart from what a run logged: the training loss of every step (averaged over
 * buckets of steps when there are many, which also smooths the per-batch noise) and the validation loss
 * of every evaluation, both in bits per byte.
 */
import type { ChartSeries } from './chart.js';

export interface LoggedStep {
  readonly step: number;
  readonly bitsPerByte: number;
}

export interface LoggedEvaluation {
  readonly step: number;
  readonly bitsPerByte: number;
}

export function trainingCurves(
  steps: readonly LoggedStep[],
  evaluations: readonly LoggedEvaluation[],
  maxPoints = 400,
): ChartSeries[] {
  const bucket = Math.max(1, Math.ceil(steps.length / maxPoints));
  const train: Array<{ step: number; value: number }> = [];
  for (let i = 0; i < steps.length; i += bucket) {
    const slice = steps.slice(i, i + bucket);
    const mean = slice.reduce((sum, s) => sum + s.bitsPerByte, 0) / slice.length;
    train.push({ step: slice[slice.length - 1].step, value: mean });
  }
  return [
    { name: 'train', points: train },
    { name: 'validation', points: evaluations.map((e) => ({ step: e.step, value: e.bitsPerByte })), markers: true },
  ];
}
