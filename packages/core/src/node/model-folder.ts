/** Model folders on disk: native (saveModel / loadModel) and Hugging Face DiffLlama (saveDiffLlama). */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { toDiffLlama } from '../io/diffllama.js';
import { CheckpointError, CheckpointIOError } from '../io/errors.js';
import {
  CONFIG_FILE,
  loadModelFromFolder,
  nativeModelFiles,
  readModelFolder,
  type LoadOptions,
  type ModelFolderContents,
} from '../io/model-folder.js';
import type { SafetensorsEntry } from '../io/safetensors.js';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE } from '../io/tensor-store.js';
import type { ModelConfig } from '../model/config.js';
import type { DiffTransformer, ModelOptions } from '../model/model.js';
import type { HostTensor } from '../model/parameters.js';
import { writeFileAtomic } from './atomic-write.js';
import { directorySource } from './file-source.js';
import { ioError } from './io-error.js';
import { layoutChunks, writeSafetensorsFile } from './safetensors-file.js';

async function prepareFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw ioError(dir, 'create the folder', error);
  }
}

/**
 * Saves a model natively: config.json (format, version and the resolved config) and model.safetensors
 * (float32, our parameter names). Loading it gives bit-identical parameters and so identical logits.
 */
export async function saveModel(model: DiffTransformer, dir: string): Promise<void> {
  await prepareFolder(dir);
  try {
    await stat(join(dir, SAFETENSORS_INDEX_FILE));
    throw new CheckpointIOError(
      dir,
      `the folder holds a sharded checkpoint (${SAFETENSORS_INDEX_FILE}); save into an empty folder`,
    );
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
  }
  const files = await nativeModelFiles(model);
  await writeFileAtomic(join(dir, SAFETENSORS_FILE), layoutChunks(files.weights));
  await writeFileAtomic(join(dir, CONFIG_FILE), [new TextEncoder().encode(files.config)]);
}

/** Reads and validates a model folder (native or Hugging Face DiffLlama) to the host. */
export async function readModel(dir: string, options: LoadOptions = {}): Promise<ModelFolderContents> {
  return readModelFolder(directorySource(dir), options);
}

/**
 * Loads a model folder (native or Hugging Face DiffLlama) onto a backend (default: the active one).
 * Parameters holding NaN or ±Infinity are refused (NonFiniteTensorError) unless `allowNonFinite`.
 */
export async function loadModel(dir: string, options: ModelOptions & LoadOptions = {}): Promise<DiffTransformer> {
  return loadModelFromFolder(directorySource(dir), options);
}

/**
 * Writes a model as a Hugging Face DiffLlama folder (config.json, safetensors, sharded when larger
 * than `maxShardBytes`): the inverse of the DiffLlama loader's row permutation.
 */
export async function saveDiffLlama(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  dir: string,
  options: { maxShardBytes?: number } = {},
): Promise<void> {
  const { config: json, tensors } = toDiffLlama(config, parameters);
  await prepareFolder(dir);
  const maxShard = options.maxShardBytes ?? Infinity;
  const shards: Array<Array<[string, SafetensorsEntry]>> = [[]];
  let shardBytes = 0;
  let total = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.length * 4;
    if (shardBytes > 0 && shardBytes + bytes > maxShard) {
      shards.push([]);
      shardBytes = 0;
    }
    shards[shards.length - 1].push([name, { shape: t.shape, data: t.data, dtype: 'F32' }]);
    shardBytes += bytes;
    total += bytes;
  }
  const metadata = { format: 'pt' };
  if (shards.length === 1) {
    await writeSafetensorsFile(join(dir, SAFETENSORS_FILE), shards[0], metadata);
  } else {
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      await writeSafetensorsFile(join(dir, name), shard, metadata);
      for (const [tensor] of shard) weightMap[tensor] = name;
    }
    const index = { metadata: { total_size: total }, weight_map: weightMap };
    await writeFileAtomic(join(dir, SAFETENSORS_INDEX_FILE), [
      new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`),
    ]);
  }
  await writeFileAtomic(join(dir, CONFIG_FILE), [new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`)]);
}
