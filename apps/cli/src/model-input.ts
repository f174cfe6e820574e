/** Shared by the model commands: parsing token ids and loading a model folder onto a backend. */
import type { Backend, DiffTransformer } from '@diff-transformer/core';
import { loadModel } from '@diff-transformer/core/node';
import { UsageError } from './errors.js';
import { modelFolderPath } from './hub-model.js';

/** "1,2,3;4,5,6" → [[1, 2, 3], [4, 5, 6]]: sequences of equal length separated by ';'. */
export function parseIds(flag: string, text: string): number[][] {
  const rows = text.split(';').map((row, r) => {
    const cells = row.split(',').map((cell) => cell.trim());
    if (cells.length === 0 || cells.some((c) => c === '')) {
      throw new UsageError(`--${flag}: sequence ${r + 1} is empty or has an empty entry; expected e.g. 1,2,3;4,5,6`);
    }
    return cells.map((cell) => {
      const id = Number(cell);
      if (!/^\d+$/.test(cell) || !Number.isSafeInteger(id))
        throw new UsageError(`--${flag}: ${JSON.stringify(cell)} is not a token id (an integer ≥ 0)`);
      return id;
    });
  });
  if (rows.some((row) => row.length !== rows[0].length)) {
    throw new UsageError(
      `--${flag}: every sequence must be equally long, got lengths ${rows.map((r) => r.length).join(', ')}`,
    );
  }
  return rows;
}

export function checkIdsInVocab(flag: string, rows: number[][], vocabSize: number): void {
  for (const row of rows) {
    for (const id of row) {
      if (id >= vocabSize)
        throw new UsageError(`--${flag}: token id ${id} is outside the model's vocabulary [0, ${vocabSize})`);
    }
  }
}

export const MODEL_REQUIRED =
  '--model DIR is required (a folder with config.json and model.safetensors, ' +
  'or hf:owner/name[@revision] from the Hugging Face Hub)';

/** The `--model` help line every model command shares. */
export const MODEL_HELP =
  'DIR is a model folder, or hf:owner/name[@revision]: a model on the Hugging Face Hub, downloaded\n' +
  'into the Hugging Face cache (HF_HUB_CACHE, HF_HOME; HF_TOKEN for gated models; HF_HUB_OFFLINE=1: cache only).';

/** The folder of `--model`: a path as given, or the snapshot of an hf: model (downloaded if needed). */
export async function modelPath(command: string, value: string | undefined): Promise<string> {
  if (value === undefined) throw new UsageError(`${command}: ${MODEL_REQUIRED}`);
  return modelFolderPath(value);
}

/** The flag of the model commands that loads parameters holding NaN or ±Infinity anyway. */
export const ALLOW_NON_FINITE_FLAG = { 'allow-non-finite': { type: 'boolean' } } as const;

/** Loads a model folder (a path; resolve `--model` with modelPath first). */
export async function loadModelFolder(
  dir: string,
  backend: Backend,
  options: { allowNonFinite?: boolean } = {},
): Promise<DiffTransformer> {
  return loadModel(dir, { backend, allowNonFinite: options.allowNonFinite === true });
}
