/**
 * A checkpoint is a model folder that `difftx generate|logits|inspect` accept (config.json and
 * model.safetensors, native layout) plus two files for training: optimizer.safetensors (AdamW's float32
 * moments, `exp_avg.NAME` and `exp_avg_sq.NAME` as torch calls them) and trainer-state.json (the step,
 * the options, the data's fingerprint). Here the files are made and read as bytes, so a browser can keep
 * them anywhere; '@diff-transformer/train/node' writes them to a folder atomically.
 */
import {
  CheckpointError,
  layoutSafetensors,
  nativeModelFiles,
  openSafetensors,
  type FolderFile,
  type FolderSource,
  type SafetensorsEntry,
} from '@diff-transformer/core';
import { ResumeError } from './errors.js';
import type { HostMoments } from './optimizer.js';
import { TRAINER_STATE_FORMAT, type Trainer, type TrainerState } from './trainer.js';

/** core's FolderFile (one file of a folder to write), re-exported where the checkpoint's files are made. */
export type { FolderFile };

export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_STATE_FILE = 'trainer-state.json';
export const TRAIN_LOG_FILE = 'train-log.jsonl';
export const LOSS_CURVE_FILE = 'loss-curve.svg';

const text = (s: string) => [new TextEncoder().encode(s)];

/** Every file of the trainer's checkpoint: config.json, model.safetensors, the optimiser and the trainer state. */
export async function checkpointFiles(trainer: Trainer): Promise<FolderFile[]> {
  const model = await nativeModelFiles(trainer.model);
  const { step, moments } = await trainer.optimizer.hostState();
  const entries: Array<[string, SafetensorsEntry]> = [];
  for (const [name, p] of trainer.model.parameters) {
    const { m, v } = moments.get(name)!;
    entries.push([`exp_avg.${name}`, { shape: p.shape, data: m, dtype: 'F32' }]);
    entries.push([`exp_avg_sq.${name}`, { shape: p.shape, data: v, dtype: 'F32' }]);
  }
  const optimizer = layoutSafetensors(
    entries,
    { format: 'diff-transformer-adamw', step: String(step) },
    OPTIMIZER_FILE,
  );
  return [
    { name: 'model.safetensors', chunks: [model.weights.header, ...model.weights.tensors.map((t) => t.bytes)] },
    { name: OPTIMIZER_FILE, chunks: [optimizer.header, ...optimizer.tensors.map((t) => t.bytes)] },
    { name: TRAINER_STATE_FILE, chunks: text(`${JSON.stringify(trainer.state(), null, 2)}\n`) },
    // Written last, as a loader reads it first.
    { name: 'config.json', chunks: text(model.config) },
  ];
}

/** The trainer's part of a checkpoint folder: its state and the optimiser's moments, validated. */
export async function readTrainingState(
  folder: FolderSource,
): Promise<{ state: TrainerState; moments: Map<string, HostMoments> }> {
  if (!(await folder.exists(TRAINER_STATE_FILE))) {
    throw new ResumeError(
      folder.name,
      `no ${TRAINER_STATE_FILE}: this is a model folder but not a training checkpoint ` +
        '(difftx train --out writes one); start a new run instead of --resume',
    );
  }
  let state: TrainerState;
  try {
    state = JSON.parse(await folder.readText(TRAINER_STATE_FILE)) as TrainerState;
  } catch (error) {
    throw new ResumeError(folder.name, `${TRAINER_STATE_FILE} is not valid JSON`, { cause: error });
  }
  if (state?.format !== TRAINER_STATE_FORMAT || state.version !== 1) {
    throw new ResumeError(
      folder.name,
      `${TRAINER_STATE_FILE}: expected format "${TRAINER_STATE_FORMAT}" version 1, ` +
        `got ${JSON.stringify(state?.format)} version ${JSON.stringify(state?.version)}`,
    );
  }
  if (!(await folder.exists(OPTIMIZER_FILE)))
    throw new ResumeError(folder.name, `no ${OPTIMIZER_FILE} beside the state`);
  const file = await openSafetensors(await folder.open(OPTIMIZER_FILE));
  try {
    if (file.metadata.step !== String(state.step)) {
      throw new ResumeError(
        folder.name,
        `${OPTIMIZER_FILE} is of step ${file.metadata.step}, ${TRAINER_STATE_FILE} of step ${state.step}`,
      );
    }
    const moments = new Map<string, HostMoments>();
    for (const tensorName of file.tensors.keys()) {
      const match = /^exp_avg\.(.+)$/.exec(tensorName);
      if (!match) continue;
      const name = match[1];
      moments.set(name, { m: await file.readFloat32(tensorName), v: await file.readFloat32(`exp_avg_sq.${name}`) });
    }
    return { state, moments };
  } catch (error) {
    if (error instanceof CheckpointError || error instanceof ResumeError) throw error;
    throw new ResumeError(folder.name, `${OPTIMIZER_FILE}: ${(error as Error).message}`, { cause: error });
  } finally {
    await file.close();
  }
}
