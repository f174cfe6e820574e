/**
 * Writing a whole folder atomically. The files go into a new sibling folder `.NAME.PID-RANDOM.new`,
 * flushed to disk; then two renames swap it in (the old folder aside to `.NAME.PID-RANDOM.old`, the new
 * one into place) and the old one is removed. A kill at any moment leaves a complete folder: before the
 * first rename the old one is untouched; between the two, both are complete beside the place, and the
 * next save or load there finishes the swap (settleFolder); after the second, only the old copy is left
 * to remove. settleFolder also removes what a killed save left behind.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, open, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DiffTransformerError } from '../errors.js';
import { CheckpointIOError } from '../io/errors.js';
import type { FolderFile } from '../io/folder-file.js';
import { writeFileAtomic } from './atomic-write.js';
import { ioError } from './io-error.js';

export interface AtomicFolderOptions {
  /**
   * Names in an existing folder that the new files replace (an older checkpoint's shards, say); every
   * other entry (a tokenizer, a README) is carried over into the new folder. Default: the new files.
   */
  readonly replaces?: (name: string) => boolean;
  /**
   * Runs on the complete staging folder before it is swapped in (an export loads itself back, say);
   * a throw leaves the old folder as it was and nothing beside it.
   */
  readonly verify?: (staging: string) => Promise<void>;
}

/** Swaps in flight in this process, by staging folder: never settled from under their writer. */
const inFlight = new Set<string>();

/**
 * Writes `files` as the folder `dir`, replacing the folder that is there (its other entries carried
 * over) so that `dir` is always the old folder or the new one, complete.
 */
export async function writeFolderAtomic(
  dir: string,
  files: readonly FolderFile[],
  options: AtomicFolderOptions = {},
): Promise<void> {
  // Through a symbolic link to the folder it points at: the swap replaces the folder, not the link.
  const target = await realpath(dir).catch(() => resolve(dir));
  const parent = dirname(target);
  const token = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staging = join(parent, `.${basename(target)}.${token}.new`);
  const aside = join(parent, `.${basename(target)}.${token}.old`);
  const names = new Set(files.map((f) => f.name));
  const replaces = options.replaces ?? ((name: string) => names.has(name));
  try {
    await mkdir(parent, { recursive: true });
  } catch (error) {
    throw ioError(parent, 'create the folder', error);
  }
  await settleFolder(target);
  const existing = await kindOf(target);
  if (existing === 'other') throw new CheckpointIOError(target, 'exists and is not a folder; give a folder path');
  inFlight.add(staging);
  try {
    try {
      await mkdir(staging);
      for (const file of files) await writeFileAtomic(join(staging, file.name), file.chunks);
      if (existing === 'folder') {
        for (const name of await readdir(target)) {
          if (names.has(name) || replaces(name) || isTemporaryFile(name)) continue;
          await cp(join(target, name), join(staging, name), { recursive: true, verbatimSymlinks: true });
        }
      }
      await syncDirectory(staging);
      await options.verify?.(staging);
    } catch (error) {
      await rm(staging, { recursive: true, force: true }).catch(() => {});
      throw error instanceof DiffTransformerError ? error : ioError(target, 'write the folder', error);
    }
    try {
      if (existing === 'folder') await rename(target, aside);
      await rename(staging, target);
    } catch (error) {
      // Put back whatever the first rename moved, then leave nothing behind.
      if (existing === 'folder' && (await kindOf(target)) === null) await rename(aside, target).catch(() => {});
      await rm(staging, { recursive: true, force: true }).catch(() => {});
      throw ioError(target, 'replace the folder', error);
    }
    await syncDirectory(parent);
    if (existing === 'folder') await rm(aside, { recursive: true, force: true }).catch(() => {});
  } finally {
    inFlight.delete(staging);
  }
}

/**
 * Finishes or cleans up what a killed folder write left beside `dir`: when `dir` is missing between
 * the two renames of a swap, the complete new folder takes its place (or else the old one goes back);
 * then the staging and set-aside folders of processes no longer running are removed. Best effort:
 * a folder it cannot touch is left as it is.
 */
export async function settleFolder(dir: string): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return;
  }
  const pattern = new RegExp(`^\\.${escapeRegExp(basename(target))}\\.(\\d+)-[0-9a-f]{8}\\.(new|old)$`);
  const leftovers = new Map<string, { pid: number; new?: string; old?: string }>();
  for (const name of entries) {
    const match = pattern.exec(name);
    if (!match) continue;
    const token = name.slice(0, -'.new'.length);
    if (inFlight.has(join(parent, `${token}.new`))) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid && isRunning(pid)) continue;
    const entry = leftovers.get(token) ?? { pid };
    entry[match[2] as 'new' | 'old'] = join(parent, name);
    leftovers.set(token, entry);
  }
  if (leftovers.size === 0) return;
  if ((await kindOf(target)) === null) {
    // A set-aside folder exists only once its staging folder was complete: roll forward if it is there.
    const interrupted = [...leftovers.values()].find((l) => l.old !== undefined);
    const restore = interrupted?.new ?? interrupted?.old;
    if (restore) {
      await rename(restore, target).catch(() => {});
      if (interrupted!.new === restore) interrupted!.new = undefined;
      else interrupted!.old = undefined;
    }
  }
  for (const l of leftovers.values())
    for (const path of [l.new, l.old]) if (path) await rm(path, { recursive: true, force: true }).catch(() => {});
}

/** writeFileAtomic's temporary files (`.NAME.PID.RANDOM.tmp`), left by a killed write: never carried over. */
function isTemporaryFile(name: string): boolean {
  return /^\..+\.\d+\.[0-9a-f]{8}\.tmp$/.test(name);
}

async function kindOf(path: string): Promise<'folder' | 'other' | null> {
  try {
    return (await stat(path)).isDirectory() ? 'folder' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(path, 'look at', error);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Makes renames in a folder durable (best effort: not every platform can open a folder). */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    await handle.sync().catch(() => {});
    await handle.close();
  } catch {
    /* ignored */
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
