/**
 * The Hugging Face cache on disk, as huggingface_hub lays it out, so Python and this project share files:
 *
 *   <cache>/models--owner--name/blobs/<etag>                 the bytes (etag: LFS sha256 or git blob id)
 *   <cache>/models--owner--name/snapshots/<commit>/<file>    relative symlink → ../../blobs/<etag>
 *   <cache>/models--owner--name/refs/<revision>              the commit a branch or tag pointed at
 *
 * A blob is only ever renamed into place once complete and checked; a snapshot entry only ever
 * replaced by a rename; so a reader sees a whole file or none.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, lstat, mkdir, readFile, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';
import { HubUnsafePathError } from '../errors.js';
import { COMMIT_HASH, type HubModelId } from '../model-id.js';

export interface RepoCache {
  /** The hub cache folder (HF_HUB_CACHE). */
  readonly root: string;
  /** `models--owner--name` inside it. */
  readonly folderName: string;
  readonly storage: string;
}

export function repoCache(root: string, repo: string): RepoCache {
  const folderName = getRepoFolderName({ type: 'model', name: repo });
  return { root, folderName, storage: join(root, folderName) };
}

export const blobPath = (cache: RepoCache, etag: string) => join(cache.storage, 'blobs', etag);
export const snapshotDir = (cache: RepoCache, commit: string) => join(cache.storage, 'snapshots', commit);
/** Beside huggingface_hub's `.locks/<repo>/<etag>.lock` (a flock, which Node cannot take): a lock of our own. */
export const lockPath = (cache: RepoCache, etag: string) =>
  join(cache.root, '.locks', cache.folderName, `${etag}.pid.lock`);
const refPath = (cache: RepoCache, revision: string) => join(cache.storage, 'refs', ...revision.split('/'));

/** The commit a revision names in the cache: itself for a commit hash, else what refs/<revision> holds. */
export async function cachedCommit(cache: RepoCache, revision: string): Promise<string | null> {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const commit = (await readFile(refPath(cache, revision), 'utf8')).trim();
    return COMMIT_HASH.test(commit) ? commit : null;
  } catch {
    return null;
  }
}

/** Records what a branch or tag points at (nothing for a commit hash), replacing the file by a rename. */
export async function writeRef(cache: RepoCache, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const path = refPath(cache, revision);
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, commit);
  await rename(temporary, path);
}

/**
 * A file of a cached snapshot, or null when it is not there (a dangling link counts as absent). A link
 * or a folder that leads out of the repository's blobs and snapshot is refused: a cache someone else
 * wrote must not make the loader read an arbitrary file.
 */
export async function cachedFile(
  cache: RepoCache,
  id: HubModelId,
  commit: string,
  name: string,
): Promise<{ path: string; size: number } | null> {
  const path = join(snapshotDir(cache, commit), name);
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
      return null;
    throw error;
  }
  const storage = await realpath(cache.storage);
  const inside = [join(storage, 'blobs'), join(storage, 'snapshots', commit)].some((d) => real.startsWith(d + sep));
  if (!inside)
    throw new HubUnsafePathError(
      id.repo,
      id.revision,
      path,
      `the cached snapshot entry leads to ${real}, outside ${join(cache.storage, 'blobs')}`,
    );
  const info = await stat(real);
  if (!info.isFile())
    throw new HubUnsafePathError(id.repo, id.revision, path, 'the cached snapshot entry is not a file');
  return { path, size: info.size };
}

/** Whether a blob is in place with the expected size (-1: any size). */
export async function hasBlob(path: string, size: number): Promise<boolean> {
  try {
    const info = await lstat(path);
    return info.isFile() && (size < 0 || info.size === size);
  } catch {
    return false;
  }
}

/**
 * Points snapshots/<commit>/<name> at the blob by a relative link (the cache can move), made beside it
 * and renamed over any old entry; where links cannot be made (Windows without the right), a copy.
 */
export async function linkSnapshotFile(cache: RepoCache, commit: string, name: string, etag: string): Promise<void> {
  const path = join(snapshotDir(cache, commit), name);
  await mkdir(dirname(path), { recursive: true });
  const temporary = join(dirname(path), `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const blob = blobPath(cache, etag);
  try {
    await symlink(relative(dirname(path), blob), temporary);
  } catch {
    await copyFile(blob, temporary);
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
