/** Atomic file writes: a temporary file beside the target, fsync, rename. */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CheckpointError, CheckpointIOError } from '../io/errors.js';
import { MAX_READ, ioError } from './io-error.js';

/**
 * Writes a file atomically: the chunks go to a temporary file beside it, which is flushed to disk
 * (fsync) and renamed over `path`. A failure at any point removes the temporary file, so `path` is
 * either untouched or complete — never half-written.
 */
export async function writeFileAtomic(path: string, chunks: Iterable<Uint8Array | (() => Uint8Array)>): Promise<void> {
  // Said before any byte is written: a folder in the way would only fail at the rename.
  if (
    await stat(path).then(
      (s) => s.isDirectory(),
      () => false,
    )
  ) {
    throw new CheckpointIOError(path, 'cannot write: it is a folder, not a file; give a file path');
  }
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
