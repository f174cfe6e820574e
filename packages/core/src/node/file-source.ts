/** Byte sources over files and folders on disk: read in pieces, so files larger than 2 GiB work. */
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteSource, FolderSource } from '../io/byte-source.js';
import { CheckpointError, CheckpointIOError } from '../io/errors.js';
import { MAX_READ, ioError } from './io-error.js';

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
      } catch (error) {
        // Absent is an answer; anything else (permission denied) is an error to report.
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return false;
        throw ioError(join(dir, file), 'read', error);
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
        throw ioError(dir, 'read the folder', error);
      }
    },
  };
}
