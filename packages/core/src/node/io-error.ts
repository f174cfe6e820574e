/** Operating-system failures as CheckpointIOError, with the reason in words. */
import { CheckpointIOError } from '../io/errors.js';

/** The most bytes one read or write asks the file system for. */
export const MAX_READ = 1 << 30;

/** `cannot <action>: <reason>` for the file, from an fs error. */
export function ioError(file: string, action: string, error: unknown): CheckpointIOError {
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
