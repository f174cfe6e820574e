/**
 * The tensors of a model folder, wherever they live: one `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` ({"weight_map": {tensor: shard file}}). Every shard's header is
 * validated, and the index is checked against the shards, before any tensor is read.
 */
import type { FolderSource } from './byte-source.js';
import { CheckpointConfigError, CheckpointError, MissingTensorError, UnexpectedTensorError } from './errors.js';
import type { SafetensorsFile, SafetensorsTensorInfo } from './safetensors.js';
import { openSafetensors } from './safetensors.js';

export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

export interface StoredTensor {
  readonly info: SafetensorsTensorInfo;
  /** The file (shard) holding it. */
  readonly file: SafetensorsFile;
}

export interface TensorStore {
  /** Every tensor by name. */
  readonly tensors: ReadonlyMap<string, StoredTensor>;
  /** The files opened (one, or every shard). */
  readonly files: readonly SafetensorsFile[];
  /** Where the tensor list came from: the single file or the index (for messages about missing tensors). */
  readonly listing: string;
  close(): Promise<void>;
}

/** What a model config makes of a tensor name: a parameter it needs, one it ignores, or a stranger. */
export type TensorRole = 'needed' | 'ignorable' | 'unexpected';

export interface TensorStoreOptions {
  /**
   * The config's view of each name, so that an index entry whose shard lacks the tensor is reported
   * for what it is: missing when the config needs it, unexpected when the config has no such parameter.
   */
  readonly roleOf?: (name: string) => TensorRole;
}

/** Opens the folder's safetensors (single or sharded) and validates every header. */
export async function openTensorStore(folder: FolderSource, options: TensorStoreOptions = {}): Promise<TensorStore> {
  const files: SafetensorsFile[] = [];
  const closeAll = async () => {
    await Promise.all(files.map((f) => f.close().catch(() => {})));
  };
  try {
    if (await folder.exists(SAFETENSORS_INDEX_FILE)) return await openSharded(folder, files, closeAll, options);
    if (!(await folder.exists(SAFETENSORS_FILE))) {
      throw new CheckpointConfigError(
        `${folder.name}/${SAFETENSORS_FILE}`,
        null,
        `no ${SAFETENSORS_FILE} and no ${SAFETENSORS_INDEX_FILE} in the folder; ` +
          `a model folder holds config.json and its weights as safetensors`,
      );
    }
    const file = await openSafetensors(await folder.open(SAFETENSORS_FILE));
    files.push(file);
    const tensors = new Map<string, StoredTensor>();
    for (const info of file.tensors.values()) tensors.set(info.name, { info, file });
    return { tensors, files, listing: file.name, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function openSharded(
  folder: FolderSource,
  files: SafetensorsFile[],
  closeAll: () => Promise<void>,
  options: TensorStoreOptions,
): Promise<TensorStore> {
  const indexName = `${folder.name}/${SAFETENSORS_INDEX_FILE}`;
  let index: unknown;
  try {
    index = JSON.parse(await folder.readText(SAFETENSORS_INDEX_FILE));
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointConfigError(
      indexName,
      null,
      `not valid JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointConfigError(
      indexName,
      'weight_map',
      'expected an object mapping each tensor name to its shard file',
    );
  }
  const byShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (
      typeof shard !== 'string' ||
      shard.length === 0 ||
      shard.includes('/') ||
      shard.includes('\\') ||
      shard === '..'
    ) {
      throw new CheckpointConfigError(
        indexName,
        `weight_map.${tensor}`,
        `expected a shard file name in the same folder, got ${JSON.stringify(shard)}`,
      );
    }
    if (!byShard.has(shard)) byShard.set(shard, []);
    byShard.get(shard)!.push(tensor);
  }
  // An entry the shard does not back: a stranger to the config is unexpected, whatever the shard holds.
  const absent = (file: string, name: string, detail: string): CheckpointError | null => {
    const role = options.roleOf?.(name);
    if (role === 'ignorable') return null;
    if (role === 'unexpected') return new UnexpectedTensorError(indexName, name, detail);
    return role === 'needed'
      ? new MissingTensorError(file, name, detail)
      : new MissingTensorError(file, name, detail, `${SAFETENSORS_INDEX_FILE} lists it`);
  };
  const tensors = new Map<string, StoredTensor>();
  for (const [shard, names] of byShard) {
    if (!(await folder.exists(shard))) {
      for (const name of names) {
        const error = absent(
          `${folder.name}/${shard}`,
          name,
          `the index lists it in shard ${shard}, not in the folder`,
        );
        if (error) throw error;
      }
      continue;
    }
    const file = await openSafetensors(await folder.open(shard));
    files.push(file);
    for (const name of names) {
      const info = file.tensors.get(name);
      if (info) tensors.set(name, { info, file });
      else {
        const error = absent(file.name, name, `${SAFETENSORS_INDEX_FILE} places it in this shard, which lacks it`);
        if (error) throw error;
      }
    }
    for (const name of file.tensors.keys()) {
      if (!tensors.has(name) || tensors.get(name)!.file !== file) {
        throw new UnexpectedTensorError(
          file.name,
          name,
          '',
          `the shard holds it but ${SAFETENSORS_INDEX_FILE} does not list it here`,
        );
      }
    }
  }
  return { tensors, files, listing: indexName, close: closeAll };
}
