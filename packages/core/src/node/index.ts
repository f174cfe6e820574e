/**
 * @diff-transformer/core/node — file access for Node.js: byte sources over files (read in pieces, so
 * files larger than 2 GiB work), model folders, atomic writes, tokenizers from a folder. The main entry
 * stays browser-safe; everything that touches `fs` is here.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ByteSource, FolderSource } from '../io/byte-source.js';
import { toDiffLlama } from '../io/diffllama.js';
import { CheckpointError, CheckpointIOError } from '../io/errors.js';
import {
  CONFIG_FILE,
  loadModelFromFolder,
  nativeModelFiles,
  readModelFolder,
  type ModelFolderContents,
} from '../io/model-folder.js';
import type { SafetensorsEntry, SafetensorsFile, SafetensorsLayout } from '../io/safetensors.js';
import { layoutSafetensors, openSafetensors } from '../io/safetensors.js';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE } from '../io/tensor-store.js';
import { ByteTokenizer, HuggingFaceTokenizer, type Tokenizer } from '../io/tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import type { DiffTransformer, ModelOptions } from '../model/model.js';
import type { HostTensor } from '../model/parameters.js';

const MAX_READ = 1 << 30;

function ioError(file: string, action: string, error: unknown): CheckpointIOError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const reason =
    code === 'ENOENT'
      ? 'no such file or directory'
      : code === 'EACCES'
        ? 'permission denied'
        : error instanceof Error
          ? error.message
          : String(error);
  return new CheckpointIOError(file, `cannot ${action}: ${reason}`, error);
}

/** A byte source over a file; read in pieces (never the whole file). Close it when done. */
export async function fileSource(path: string): Promise<ByteSource> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw ioError(path, 'open', error);
  }
  let size: number;
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new CheckpointIOError(path, 'not a regular file');
    size = info.size;
  } catch (error) {
    await handle.close().catch(() => {});
    throw error instanceof CheckpointError ? error : ioError(path, 'stat', error);
  }
  let closed = false;
  return {
    name: path,
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(length) ||
        offset < 0 ||
        length < 0 ||
        length > MAX_READ ||
        offset + length > size
      ) {
        throw new CheckpointIOError(
          path,
          `read of ${length} bytes at ${offset} is outside the file's ${size} bytes (or over 1 GiB)`,
        );
      }
      const out = new Uint8Array(length);
      let done = 0;
      try {
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0)
            throw new CheckpointIOError(
              path,
              `the file ended early: ${done} of ${length} bytes at ${offset} ` +
                `could be read (was it truncated while open?)`,
            );
          done += bytesRead;
        }
      } catch (error) {
        throw error instanceof CheckpointError ? error : ioError(path, 'read', error);
      }
      return out;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** A model folder on disk. */
export function directorySource(dir: string): FolderSource {
  return {
    name: dir,
    async exists(file) {
      try {
        return (await stat(join(dir, file))).isFile();
      } catch {
        return false;
      }
    },
    async readText(file) {
      try {
        return await readFile(join(dir, file), 'utf8');
      } catch (error) {
        throw ioError(join(dir, file), 'read', error);
      }
    },
    open: (file) => fileSource(join(dir, file)),
    async list() {
      try {
        return await readdir(dir);
      } catch (error) {
        throw ioError(dir, 'list', error);
      }
    },
  };
}

/** Opens a safetensors file and validates its header; read tensors with .read(name); close() when done. */
export async function readSafetensorsFile(path: string): Promise<SafetensorsFile> {
  return openSafetensors(await fileSource(path));
}

/**
 * Writes a file atomically: the chunks go to a temporary file beside it, which is flushed to disk
 * (fsync) and renamed over `path`. A failure at any point removes the temporary file, so `path` is
 * either untouched or complete — never half-written.
 */
export async function writeFileAtomic(path: string, chunks: Iterable<Uint8Array | (() => Uint8Array)>): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let handle: FileHandle | null = null;
  try {
    handle = await open(temporary, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o644);
    for (const chunk of chunks) {
      const bytes = typeof chunk === 'function' ? chunk() : chunk;
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.length - done, MAX_READ));
        done += bytesWritten;
      }
    }
    await handle.sync();
    await handle.close();
    handle = null;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw error instanceof CheckpointError ? error : ioError(path, 'write', error);
  }
  // Make the rename itself durable (best effort: not every platform can open a directory).
  try {
    const directory = await open(dirname(path), 'r');
    await directory.sync().catch(() => {});
    await directory.close();
  } catch {
    /* ignored */
  }
}

function layoutChunks(layout: SafetensorsLayout): Array<Uint8Array | (() => Uint8Array)> {
  return [layout.header, ...layout.tensors.map((t) => t.bytes)];
}

/** Writes a safetensors file atomically (see writeFileAtomic). */
export async function writeSafetensorsFile(
  path: string,
  entries: Iterable<readonly [string, SafetensorsEntry]>,
  metadata: Readonly<Record<string, string>> = {},
): Promise<void> {
  await writeFileAtomic(path, layoutChunks(layoutSafetensors(entries, metadata, path)));
}

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
export async function readModel(dir: string): Promise<ModelFolderContents> {
  return readModelFolder(directorySource(dir));
}

/** Loads a model folder (native or Hugging Face DiffLlama) onto a backend (default: the active one). */
export async function loadModel(dir: string, options: ModelOptions = {}): Promise<DiffTransformer> {
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

/**
 * The folder's tokenizer: tokenizer.json (with tokenizer_config.json when present) through
 * @huggingface/tokenizers, or null when the folder has none.
 */
export async function loadTokenizer(
  dir: string,
  options: { addSpecialTokens?: boolean } = {},
): Promise<Tokenizer | null> {
  const folder = directorySource(dir);
  if (!(await folder.exists('tokenizer.json'))) return null;
  const parse = async (file: string) => {
    try {
      return JSON.parse(await folder.readText(file)) as unknown;
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      throw new CheckpointIOError(
        join(dir, file),
        `not valid JSON (${error instanceof Error ? error.message : String(error)})`,
      );
    }
  };
  const json = await parse('tokenizer.json');
  const config = (await folder.exists('tokenizer_config.json')) ? await parse('tokenizer_config.json') : {};
  return new HuggingFaceTokenizer(json, config, { ...options, file: join(dir, 'tokenizer.json') });
}

export { ByteTokenizer, HuggingFaceTokenizer };
