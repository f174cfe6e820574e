/** Operating-system failures as CheckpointIOError, with the reason in words. */
import { CheckpointIOError } from '../io/errors.js';

/** The most bytes one read or write asks the file system for. */
export const MAX_READ = 1 << 30;

/** `cannot <action>: <reason>` for the file, from an fs error. */
export function ioError(file: string, action: string, error: unknown): CheckpointIOError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const known = code !== undefined ? REASONS[code] : undefined;
  const reason = known ?? (error instanceof Error ? error.message : String(error));
  return new CheckpointIOError(file, `cannot ${action}: ${reason}`, error);
}

/** What the usual error codes mean, in words. */
const REASONS: Record<string, string> = {
  ENOENT: 'not found (no such file or directory)',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'not a folder',
  EISDIR: 'it is a folder, not a file',
  ENOSPC: 'no space left on device',
  EROFS: 'the file system is read-only',
};
