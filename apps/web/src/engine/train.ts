/**
 * Training in the page: a tiny DIFF Transformer and its parameter-matched baseline (twice the heads of
 * half the width, as the paper compares them), trained step by step in turn on pasted text with the
 * project's trainer (@diff-transformer/train). A stopped run keeps its trainers, so it resumes exactly.
 */
import { type ModelConfigInput, DiffTransformer, resolveConfig } from '@diff-transformer/core';
import { matchedModel, splitDocuments, Trainer, tokenizeSplit } from '@diff-transformer/train';
import type { EngineEvent, Slot, TrainRequest, TrainResult } from './protocol.js';

/** The DIFF side of the pair: byte-level, small enough to train in a browser in a minute. */
export const PAGE_MODEL: Omit<ModelConfigInput, 'maxPositions'> = {
  vocabSize: 256,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 2,
};

export interface TrainHost {
  /** Makes a trained model the slot's model (the page's generation and maps then use it). */
  replace(slot: Slot, model: DiffTransformer): void;
  stopRequested(): boolean;
  yieldToMessages(): Promise<void>;
  emit(event: EngineEvent): void;
}

interface Run {
  readonly request: TrainRequest;
  readonly trainers: Record<Slot, Trainer>;
  readonly losses: Array<{ step: number; diff: number; baseline: number }>;
}

let run: Run | null = null;

/** Forgets a run (its trainers' optimiser state); the models stay where the slots hold them. */
export function discardRun(): void {
  if (!run) return;
  for (const trainer of Object.values(run.trainers)) trainer.dispose();
  run = null;
}

/** Whether `resume` would continue a run: one that exists and has steps left. */
export function resumable(): boolean {
  return run !== null && run.trainers.diff.step < run.request.steps;
}

function startRun(request: TrainRequest, host: TrainHost): Run {
  discardRun();
  const data = tokenizeSplit(splitDocuments([{ name: 'the pasted text', text: request.text }]));
  const maxPositions = Math.max(256, request.sequenceLength);
  const diffInput = { ...PAGE_MODEL, maxPositions };
  const options = {
    steps: request.steps,
    batchSize: request.batchSize,
    seqLen: request.sequenceLength,
    learningRate: request.learningRate,
    warmupSteps: Math.min(20, Math.floor(request.steps / 10)),
    seed: request.seed,
  };
  const trainers: Partial<Record<Slot, Trainer>> = {};
  try {
    for (const slot of ['diff', 'baseline'] as const) {
      const config = resolveConfig(slot === 'diff' ? diffInput : matchedModel(diffInput, 'standard'));
      const model = DiffTransformer.create(config, { seed: request.seed });
      try {
        trainers[slot] = new Trainer(model, data, options);
      } catch (error) {
        model.dispose();
        throw error;
      }
      host.replace(slot, model);
    }
  } catch (error) {
    for (const trainer of Object.values(trainers)) trainer.dispose();
    throw error;
  }
  return { request, trainers: trainers as Record<Slot, Trainer>, losses: [] };
}

/**
 * Trains the pair until the run's last step or a stop, one step of each model in turn, reporting both
 * losses after every step. `resume` continues the current run instead of starting a new one.
 */
export async function trainPair(request: TrainRequest, resume: boolean, host: TrainHost): Promise<TrainResult> {
  if (!resume || !resumable()) run = startRun(request, host);
  const current = run!;
  const { steps } = current.request;
  while (current.trainers.diff.step < steps && !host.stopRequested()) {
    const diff = await current.trainers.diff.trainStep();
    const baseline = await current.trainers.baseline.trainStep();
    current.losses.push({ step: diff.step, diff: diff.loss, baseline: baseline.loss });
    host.emit({
      kind: 'train',
      progress: { step: diff.step, steps, loss: { diff: diff.loss, baseline: baseline.loss } },
    });
    await host.yieldToMessages();
  }
  // The parameters changed: the slots get new versions, so cached maps and summaries are refreshed.
  host.replace('diff', current.trainers.diff.model);
  host.replace('baseline', current.trainers.baseline.model);
  return {
    step: current.trainers.diff.step,
    steps,
    stopped: current.trainers.diff.step < steps,
    losses: current.losses,
  };
}
