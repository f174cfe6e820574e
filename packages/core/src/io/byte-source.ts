/**
 * Where checkpoint bytes come from. Parsing works over this abstraction so that core stays
 * browser-safe: an in-memory source here, a file source in '@diff-transformer/core/node', and a
 * user may write one over fetch() range requests or a Blob.
 */
import { CheckpointIOError } from './errors.js';

export interface ByteSource {
  /** A name for messages (a file path, a URL, 'memory'). */
  readonly name: string;
  /** Total length in bytes. */
  readonly size: number;
  /**
   * `length` bytes starting at `offset`. Callers stay within [0, size) and ask for at most 1 GiB at a
   * time. The returned array may be a view into a larger buffer and need not be aligned.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the source (closes a file); optional. */
  close?(): Promise<void>;
}

/** A source over bytes already in memory (an ArrayBuffer, a fetched file, a test's buffer). */
export function memorySource(bytes: Uint8Array | ArrayBuffer, name = 'memory'): ByteSource {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name,
    size: data.length,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(length) ||
        offset < 0 ||
        length < 0 ||
        offset + length > data.length
      ) {
        throw new CheckpointIOError(
          name,
          `read of ${length} bytes at ${offset} is outside the ${data.length} bytes of the source`,
        );
      }
      return data.subarray(offset, offset + length);
    },
  };
}

/** Files of a model folder, by name relative to the folder. */
export interface FolderSource {
  /** A name for messages (the folder path). */
  readonly name: string;
  /** Whether `file` exists. */
  exists(file: string): Promise<boolean>;
  /** The file's text (UTF-8). */
  readText(file: string): Promise<string>;
  /** A byte source over the file; the caller closes it. */
  open(file: string): Promise<ByteSource>;
  /** File names in the folder (not recursive). */
  list(): Promise<string[]>;
}

/** A folder held in memory (file name → bytes), e.g. files fetched in a browser, or a test's folder. */
export function memoryFolder(
  files: ReadonlyMap<string, Uint8Array> | Record<string, Uint8Array>,
  name = 'memory',
): FolderSource {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  const get = (file: string) => {
    const bytes = map.get(file);
    if (!bytes) throw new CheckpointIOError(`${name}/${file}`, 'no such file');
    return bytes;
  };
  return {
    name,
    async exists(file) {
      return map.has(file);
    },
    async readText(file) {
      return new TextDecoder().decode(get(file));
    },
    async open(file) {
      return memorySource(get(file), `${name}/${file}`);
    },
    async list() {
      return [...map.keys()];
    },
  };
}
