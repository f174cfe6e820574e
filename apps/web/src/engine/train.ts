/**
 * Training in the page: a tiny DIFF Transformer and its parameter-matched baseline (twice the heads of
 * half the width, as the paper compares them), trained step by step in turn on pasted text with the
 * project's trainer (@diff-transformer/train). A stopped run keeps its trainers, so it resumes exactly.
 */
import { DiffTransformer, type ModelConfigInput, resolveConfig, UnsupportedKernelError } from '@diff-transformer/core';
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
  /** Whether the slots hold this run's models: only once a step of each has succeeded. */
  installed: boolean;
}

let run: Run | null = null;

/** Forgets a run (its optimiser state); models already installed in the slots stay there. */
export function discardRun(): void {
  if (!run) return;
  for (const trainer of Object.values(run.trainers)) {
    trainer.dispose();
    if (!run.installed) trainer.model.dispose();
  }
  run = null;
}

/** Whether `resume` would continue a run: one that exists and has steps left. */
export function resumable(): boolean {
  return run !== null && run.trainers.diff.step < run.request.steps;
}

function startRun(request: TrainRequest): Run {
  const data = tokenizeSplit(splitDocuments([{ name: 'the pasted text', text: request.text }]));
  const diffInput = { ...PAGE_MODEL, maxPositions: Math.max(256, request.sequenceLength) };
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
    }
  } catch (error) {
    for (const trainer of Object.values(trainers)) {
      trainer.dispose();
      trainer.model.dispose();
    }
    throw error;
  }
  return { request, trainers: trainers as Record<Slot, Trainer>, losses: [], installed: false };
}

/** One step of each model; a missing training kernel also says which backend has them. */
async function stepBoth(current: Run): Promise<{ step: number; diff: number; baseline: number }> {
  try {
    const diff = await current.trainers.diff.trainStep();
    const baseline = await current.trainers.baseline.trainStep();
    return { step: diff.step, diff: diff.loss, baseline: baseline.loss };
  } catch (error) {
    if (!(error instanceof UnsupportedKernelError)) throw error;
    throw new UnsupportedKernelError(
      error.kernel,
      error.backend,
      `${error.message.slice(error.message.indexOf(': ') + 2)}; training needs every training kernel, ` +
        'so choose a backend that has them (the CPU backend does)',
    );
  }
}

/**
 * Trains the pair until the run's last step or a stop, one step of each model in turn, reporting both
 * losses after every step. `resume` continues the current run instead of starting a new one. A run
 * whose first step fails leaves the loaded models in their slots.
 */
export async function trainPair(request: TrainRequest, resume: boolean, host: TrainHost): Promise<TrainResult> {
  if (!resume || !resumable()) {
    discardRun();
    run = startRun(request);
  }
  const current = run!;
  const { steps } = current.request;
  while (current.trainers.diff.step < steps && !host.stopRequested()) {
    let losses: { step: number; diff: number; baseline: number };
    try {
      losses = await stepBoth(current);
    } catch (error) {
      if (!current.installed) discardRun();
      throw error;
    }
    current.installed = true;
    current.losses.push(losses);
    host.emit({
      kind: 'train',
      progress: { step: losses.step, steps, loss: { diff: losses.diff, baseline: losses.baseline } },
    });
    await host.yieldToMessages();
  }
  if (current.installed) {
    // The parameters changed: new versions in the slots, so cached maps and summaries are refreshed.
    host.replace('diff', current.trainers.diff.model);
    host.replace('baseline', current.trainers.baseline.model);
  }
  return {
    step: current.trainers.diff.step,
    steps,
    stopped: current.trainers.diff.step < steps,
    losses: current.losses,
  };
}
