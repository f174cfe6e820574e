/** Model folders on disk: native (saveModel / loadModel) and Hugging Face DiffLlama (saveDiffLlama). */
import { toDiffLlama } from '../io/diffllama.js';
import {
  CONFIG_FILE,
  loadModelFromFolder,
  nativeModelFiles,
  readModelFolder,
  type LoadOptions,
  type ModelFolderContents,
} from '../io/model-folder.js';
import { layoutSafetensors, type SafetensorsEntry } from '../io/safetensors.js';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE } from '../io/tensor-store.js';
import type { ModelConfig } from '../model/config.js';
import type { DiffTransformer, ModelOptions } from '../model/model.js';
import type { HostTensor } from '../model/parameters.js';
import type { FolderFile } from '../io/folder-file.js';
import { settleFolder, writeFolderAtomic } from './atomic-folder.js';
import { directorySource } from './file-source.js';
import { layoutChunks } from './safetensors-file.js';

/** The files a checkpoint consists of: a save replaces them all and carries every other file over. */
function isCheckpointFile(name: string): boolean {
  return (
    name === CONFIG_FILE ||
    name === SAFETENSORS_FILE ||
    name === SAFETENSORS_INDEX_FILE ||
    /^model-\d+-of-\d+\.safetensors$/.test(name)
  );
}

/**
 * Saves a model natively: config.json (format, version and the resolved config) and model.safetensors
 * (float32, our parameter names). Loading it gives bit-identical parameters and so identical logits.
 * The folder is written as a whole (see writeFolderAtomic): replaced, never half-written; the files of
 * an older checkpoint there go, any other file (a tokenizer, say) stays.
 */
export async function saveModel(model: DiffTransformer, dir: string): Promise<void> {
  const files = await nativeModelFiles(model);
  await writeFolderAtomic(
    dir,
    [
      { name: SAFETENSORS_FILE, chunks: layoutChunks(files.weights) },
      { name: CONFIG_FILE, chunks: [new TextEncoder().encode(files.config)] },
    ],
    { replaces: isCheckpointFile },
  );
}

/** Reads and validates a model folder (native or Hugging Face DiffLlama) to the host. */
export async function readModel(dir: string, options: LoadOptions = {}): Promise<ModelFolderContents> {
  await settleFolder(dir);
  return readModelFolder(directorySource(dir), options);
}

/**
 * Loads a model folder (native or Hugging Face DiffLlama) onto a backend (default: the active one).
 * Parameters holding NaN or ±Infinity are refused (NonFiniteTensorError) unless `allowNonFinite`.
 */
export async function loadModel(dir: string, options: ModelOptions & LoadOptions = {}): Promise<DiffTransformer> {
  // A save killed between its two renames leaves the folder aside: finish it first.
  await settleFolder(dir);
  return loadModelFromFolder(directorySource(dir), options);
}

/**
 * Writes a model as a Hugging Face DiffLlama folder (config.json, safetensors, sharded when larger
 * than `maxShardBytes`): the inverse of the DiffLlama loader's row permutation. Written as a whole,
 * as saveModel does.
 */
export async function saveDiffLlama(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  dir: string,
  options: { maxShardBytes?: number } = {},
): Promise<void> {
  const { config: json, tensors } = toDiffLlama(config, parameters);
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
  const text = (value: unknown) => [new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`)];
  const files: FolderFile[] = [];
  if (shards.length === 1) {
    files.push({
      name: SAFETENSORS_FILE,
      chunks: layoutChunks(layoutSafetensors(shards[0], metadata, SAFETENSORS_FILE)),
    });
  } else {
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      files.push({ name, chunks: layoutChunks(layoutSafetensors(shard, metadata, name)) });
      for (const [tensor] of shard) weightMap[tensor] = name;
    }
    files.push({
      name: SAFETENSORS_INDEX_FILE,
      chunks: text({ metadata: { total_size: total }, weight_map: weightMap }),
    });
  }
  files.push({ name: CONFIG_FILE, chunks: text(json) });
  await writeFolderAtomic(dir, files, { replaces: isCheckpointFile });
}
