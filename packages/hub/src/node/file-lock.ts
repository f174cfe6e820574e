/**
 * A lock between processes on one file download: a lock file created exclusively (O_EXCL), holding the
 * owner's pid and host, its time stamp refreshed while the owner works. Another process waits while
 * it is held; a lock whose owner died (same host: no such pid; any host: no refresh for `staleMs`) is
 * taken over. Node has no flock(2), hence a file of our own beside huggingface_hub's.
 */
import { hostname } from 'node:os';
import { mkdir, open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface LockOptions {
  /** Called while another process holds the lock (each poll). */
  readonly onWait?: () => void | Promise<void>;
  /** How long a lock may go without a refresh before it counts as abandoned. Default 60 s. */
  readonly staleMs?: number;
  readonly pollMs?: number;
}

const owner = () => `${process.pid}@${hostname()}`;

/** Runs `action` holding the lock at `path`; the lock goes when it ends, whichever way. */
export async function withFileLock<T>(path: string, action: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const staleMs = options.staleMs ?? 60_000;
  await mkdir(dirname(path), { recursive: true });
  const me = owner();
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(me);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readHolder(path);
    if (holder !== null && isAbandoned(holder, staleMs)) {
      // Removed only if it is still that holder's: a lock taken meanwhile by another waiter stays.
      if ((await readHolder(path))?.text === holder.text) await unlink(path).catch(() => {});
      continue;
    }
    await options.onWait?.();
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 100));
  }
  const heartbeat = setInterval(
    () => {
      const now = new Date();
      utimes(path, now, now).catch(() => {});
    },
    Math.max(1000, staleMs / 4),
  );
  heartbeat.unref();
  try {
    return await action();
  } finally {
    clearInterval(heartbeat);
    if ((await readHolder(path))?.text === me) await unlink(path).catch(() => {});
  }
}

async function readHolder(path: string): Promise<{ text: string; ageMs: number } | null> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, ageMs: Date.now() - info.mtimeMs };
  } catch {
    return null;
  }
}

function isAbandoned(holder: { text: string; ageMs: number }, staleMs: number): boolean {
  if (holder.ageMs > staleMs) return true;
  const match = /^(\d+)@(.*)$/.exec(holder.text);
  // Being written this instant (empty) or not ours to read: only age can tell.
  if (!match || match[2] !== hostname()) return false;
  try {
    process.kill(Number(match[1]), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
