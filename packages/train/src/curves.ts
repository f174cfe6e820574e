/**
 * The series of a loss chart from what a run logged: the training loss of every step (averaged over
 * buckets of steps when there are many, which also smooths the per-batch noise) and the validation loss
 * of every evaluation, in bits per byte (the CLI's charts) or in nats per token (the experiments' curves).
 */
import type { ChartSeries } from './chart.js';

/** What a curve plots: bits per byte, or the loss in nats per token. */
export type CurveMetric = 'bitsPerByte' | 'loss';

/** A logged step with the metric its curve plots (a StepReport, or a train-log.jsonl step record, has both). */
export type LoggedStep<M extends CurveMetric = 'bitsPerByte'> = { readonly step: number } & {
  readonly [K in M]: number;
};

/** A logged evaluation, likewise (an EvalReport has both). */
export type LoggedEvaluation<M extends CurveMetric = 'bitsPerByte'> = LoggedStep<M>;

type Logged = { readonly step: number } & { readonly [K in CurveMetric]?: number };

/** The curves in bits per byte. */
export function trainingCurves(
  steps: readonly LoggedStep[],
  evaluations: readonly LoggedEvaluation[],
  maxPoints?: number,
): ChartSeries[];
/** The curves of another metric: 'loss' plots nats per token. */
export function trainingCurves<M extends CurveMetric>(
  steps: readonly LoggedStep<M>[],
  evaluations: readonly LoggedEvaluation<M>[],
  maxPoints: number,
  metric: M,
): ChartSeries[];
export function trainingCurves(
  steps: readonly Logged[],
  evaluations: readonly Logged[],
  maxPoints = 400,
  metric: CurveMetric = 'bitsPerByte',
): ChartSeries[] {
  // The overloads pair each metric with records that carry it.
  const value = (record: Logged) => record[metric] ?? Number.NaN;
  const bucket = Math.max(1, Math.ceil(steps.length / maxPoints));
  const train: Array<{ step: number; value: number }> = [];
  for (let i = 0; i < steps.length; i += bucket) {
    const slice = steps.slice(i, i + bucket);
    const mean = slice.reduce((sum, s) => sum + value(s), 0) / slice.length;
    train.push({ step: slice[slice.length - 1].step, value: mean });
  }
  return [
    { name: 'train', points: train },
    { name: 'validation', points: evaluations.map((e) => ({ step: e.step, value: value(e) })), markers: true },
  ];
}
