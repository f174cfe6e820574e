/**
 * Checkpoints on disk: the folder written as a whole (core's writeFolderAtomic), so a kill at any moment leaves
 * the last complete checkpoint loadable, and read back for --resume, bit for bit.
 */
import { readdir } from 'node:fs/promises';
import type { Backend, DiffTransformer } from '@diff-transformer/core';
import { directorySource, loadModel, settleFolder, writeFolderAtomic } from '@diff-transformer/core/node';
import {
  checkpointFiles,
  LOSS_CURVE_FILE,
  OPTIMIZER_FILE,
  readTrainingState,
  TRAINER_STATE_FILE,
  type FolderFile,
} from '../checkpoint.js';
import type { HostMoments } from '../optimizer.js';
import type { Trainer, TrainerState } from '../trainer.js';
import { ioError, kindOf } from './fs-util.js';

/** The files a checkpoint consists of: a save replaces them all and carries every other file over (the log). */
export function isCheckpointFile(name: string): boolean {
  return (
    name === 'config.json' ||
    name === 'model.safetensors' ||
    name === 'model.safetensors.index.json' ||
    /^model-\d+-of-\d+\.safetensors$/.test(name) ||
    name === OPTIMIZER_FILE ||
    name === TRAINER_STATE_FILE ||
    name === LOSS_CURVE_FILE
  );
}

/**
 * Writes the trainer's checkpoint into `dir` as a whole: model folder, optimiser, trainer state, and
 * `extra` files (a tokenizer, the loss curve). Other files in the folder (train-log.jsonl) are kept.
 */
export async function saveCheckpoint(trainer: Trainer, dir: string, extra: readonly FolderFile[] = []): Promise<void> {
  const files = [...extra, ...(await checkpointFiles(trainer))];
  const extraNames = new Set(extra.map((f) => f.name));
  await writeFolderAtomic(dir, files, { replaces: (name) => isCheckpointFile(name) || extraNames.has(name) });
}

/** A checkpoint read back: the model on `backend`, the trainer state and the optimiser's moments. */
export interface LoadedCheckpoint {
  readonly model: DiffTransformer;
  readonly state: TrainerState;
  readonly moments: Map<string, HostMoments>;
}

export async function loadCheckpoint(dir: string, options: { backend?: Backend } = {}): Promise<LoadedCheckpoint> {
  await settleFolder(dir);
  const training = await readTrainingState(directorySource(dir));
  const model = await loadModel(dir, options);
  return { model, ...training };
}

/** Whether `dir` can take a new run: it does not exist, or it is an empty folder. */
export async function isFreshFolder(dir: string): Promise<boolean> {
  await settleFolder(dir);
  const kind = await kindOf(dir);
  if (kind === null) return true;
  if (kind === 'other') return false;
  try {
    return (await readdir(dir)).length === 0;
  } catch (error) {
    throw ioError(dir, 'list', error);
  }
}
