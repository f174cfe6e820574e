/** Small file-system helpers of the node side: what a path is, and errors that name it. */
import { stat } from 'node:fs/promises';
import { CheckpointIOError } from '@diff-transformer/core';

export async function kindOf(path: string): Promise<'folder' | 'other' | null> {
  try {
    return (await stat(path)).isDirectory() ? 'folder' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(path, 'look at', error);
  }
}

export function ioError(path: string, action: string, error: unknown): CheckpointIOError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const reason =
    code === 'ENOENT'
      ? 'no such file or directory'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'ENOSPC'
          ? 'no space left on the device'
          : error instanceof Error
            ? error.message
            : String(error);
  return new CheckpointIOError(path, `cannot ${action}: ${reason}`, error);
}
