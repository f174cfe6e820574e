/**
 * One file into the cache's blobs/: resumed from `<blob>.incomplete` with an HTTP Range, retried with
 * resume when the connection breaks (as huggingface_hub's http_get does, 5 times), hashed as it arrives
 * (the part already on disk first), and renamed into place only when its size and checksum match.
 * A mismatch deletes the partial file. The whole runs under a lock, so two processes fetching the same
 * blob end with one copy: the second waits and then finds it there.
 */
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type HubClient, hubResponseError, type RepoFile, requestFile, resolveUrl } from '../api.js';
import { fileHasher, type Hasher } from '../digest.js';
import { HubChecksumError, HubError, HubRequestError, redact } from '../errors.js';
import type { HubModelId } from '../model-id.js';
import type { FileDigest } from '../model-files.js';
import type { ProgressTally } from '../progress.js';
import { blobPath, hasBlob, lockPath, type RepoCache } from './cache-layout.js';
import { withFileLock } from './file-lock.js';
import { nodeHasher } from './node-hasher.js';

export interface BlobTask {
  readonly client: HubClient;
  readonly id: HubModelId;
  readonly commit: string;
  readonly cache: RepoCache;
  readonly file: RepoFile;
  readonly digest: FileDigest;
  readonly tally: ProgressTally;
  /** Resumed retries after a broken transfer or a 429/5xx answer. */
  readonly retries: number;
  /** The first retry's delay; each next one doubles it. */
  readonly retryDelayMs: number;
  readonly signal?: AbortSignal;
}

const READ_CHUNK = 8 << 20;
const RETRYABLE = new Set([429, 500, 502, 503, 504]);

/** Makes sure blobs/<etag> holds the file, checked; returns its path. */
export async function ensureBlob(task: BlobTask): Promise<string> {
  const { cache, file, digest, tally } = task;
  const blob = blobPath(cache, digest.hex);
  const cached = () => tally.report(file.name, 'cached', file.size, file.size);
  if (await hasBlob(blob, file.size)) {
    cached();
    return blob;
  }
  await withFileLock(
    lockPath(cache, digest.hex),
    async () => {
      // Another process may have finished it while this one waited.
      if (await hasBlob(blob, file.size)) cached();
      else await download(task, blob);
    },
    {
      onWait: async () => {
        const size = await stat(`${blob}.incomplete`).then(
          (s) => s.size,
          () => 0,
        );
        tally.report(file.name, 'waiting', size, file.size);
      },
    },
  );
  return blob;
}

async function download(task: BlobTask, blob: string): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  try {
    await transfer(task, incomplete);
  } catch (error) {
    // Bytes known to be wrong are never resumed from.
    if (error instanceof HubChecksumError) await rm(incomplete, { force: true });
    throw error;
  }
  await rename(incomplete, blob);
  task.tally.report(task.file.name, 'done', task.file.size, task.file.size);
}

/** Fills `incomplete` with the whole file, resuming what is there, and checks it. */
async function transfer(task: BlobTask, incomplete: string): Promise<void> {
  const { client, id, file, digest, tally } = task;
  await mkdir(dirname(incomplete), { recursive: true });
  let offset = await stat(incomplete).then(
    (s) => s.size,
    () => 0,
  );
  if (file.size >= 0 && offset > file.size) offset = 0;
  const handle = await open(incomplete, offset > 0 ? 'r+' : 'w');
  let hasher: Hasher;
  try {
    hasher = fileHasher(digest, file.size, nodeHasher);
    // The part a broken run left is hashed again: the checksum covers the whole file.
    for (let at = 0; at < offset; ) {
      const { bytesRead, buffer } = await handle.read(
        Buffer.alloc(Math.min(READ_CHUNK, offset - at)),
        0,
        undefined,
        at,
      );
      if (bytesRead === 0) break;
      hasher.update(buffer.subarray(0, bytesRead));
      at += bytesRead;
    }
    const url = resolveUrl(client, id.repo, task.commit, file.name);
    let failures = 0;
    let lastReport = 0;
    // A run that stopped between the last byte and the rename left the whole file: just check it.
    for (; !(offset > 0 && offset === file.size); ) {
      try {
        const { response, etag } = await requestFile(client, id, url, offset, task.signal);
        if (!response.ok) throw await hubResponseError(client, id, response, file.name);
        // An LFS file's X-Linked-Etag is its sha256: a different one means other bytes are coming.
        if (digest.algorithm === 'sha256' && etag !== null && /^[0-9a-f]{64}$/.test(etag) && etag !== digest.hex) {
          await response.body?.cancel();
          throw new HubChecksumError(
            id.repo,
            id.revision,
            file.name,
            `the Hub serves etag ${etag}, its model info lists sha256 ${digest.hex}`,
          );
        }
        if (offset > 0 && response.status === 200) {
          // The server ignored the Range: start over rather than append a second copy.
          offset = 0;
          await handle.truncate(0);
          hasher = fileHasher(digest, file.size, nodeHasher);
        } else if (offset > 0 && !response.headers.get('content-range')?.startsWith(`bytes ${offset}-`)) {
          await response.body?.cancel();
          throw new HubRequestError(
            id.repo,
            id.revision,
            response.status,
            `${file.name}: asked for bytes from ${offset}, the server sent ${response.headers.get('content-range') ?? 'no Content-Range'}`,
          );
        }
        if (!response.body) throw new HubRequestError(id.repo, id.revision, response.status, `${file.name}: no body`);
        tally.report(file.name, 'downloading', offset, file.size);
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          await handle.write(chunk, 0, chunk.length, offset);
          hasher.update(chunk);
          offset += chunk.length;
          // Bytes past the announced size can only make a mismatch: stop reading them.
          if (file.size >= 0 && offset > file.size) break;
          const now = Date.now();
          if (now - lastReport >= 100) {
            lastReport = now;
            tally.report(file.name, 'downloading', offset, file.size);
          }
        }
        if (file.size < 0 || offset >= file.size) break;
        throw new Error(`the server closed the connection at ${offset} of ${file.size} bytes`);
      } catch (error) {
        if (task.signal?.aborted) throw error;
        // A broken stream, an unreachable host, a 429 or 5xx: worth another try from where it stopped.
        const transient =
          !(error instanceof HubError) ||
          (error instanceof HubRequestError && (error.status === null || RETRYABLE.has(error.status)));
        if (!transient) throw error;
        failures++;
        if (failures > task.retries) {
          if (error instanceof HubError) throw error;
          throw new HubRequestError(
            id.repo,
            id.revision,
            null,
            `${file.name}: the transfer broke off at ${offset} of ${file.size} bytes ` +
              `(${redact(describe(error), client.token)}) after ${task.retries} resumed retries; ` +
              'run again to resume from there',
            { cause: error },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, task.retryDelayMs * 2 ** (failures - 1)));
      }
    }
    await handle.datasync();
  } finally {
    await handle.close();
  }
  const actual = hasher.hex();
  if ((file.size >= 0 && offset !== file.size) || actual !== digest.hex) {
    throw new HubChecksumError(
      id.repo,
      id.revision,
      file.name,
      offset !== file.size && file.size >= 0
        ? `${offset} bytes arrived, the Hub lists ${file.size}`
        : `its ${digest.algorithm} is ${actual}, the Hub lists ${digest.hex}`,
    );
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}
