/**
 * A model from the Hub into a browser's Cache API (as transformers.js caches its downloads), keyed by
 * the file's resolve URL at the commit, so a reload or another tab reads it from disk. Each body is
 * hashed as it streams into the cache; a file counts as cached only beside a marker entry written once
 * its checksum matched, so a tab closed mid-download or a corrupted body never passes for a good copy.
 * Two tabs fetching one file take turns through Web Locks. No resume here: a broken transfer restarts.
 */
import { CheckpointIOError, type FolderSource, SAFETENSORS_INDEX_FILE } from '@diff-transformer/core';
import {
  fetchRepoInfo,
  type HubClient,
  hubClient,
  hubResponseError,
  type RepoFile,
  requestFile,
  resolveUrl,
} from '../api.js';
import { fileHasher } from '../digest.js';
import { HubChecksumError, HubRequestError } from '../errors.js';
import { type HubModelId, parseModelId } from '../model-id.js';
import { fileDigest, firstFiles, shardFiles } from '../model-files.js';
import { type ProgressCallback, ProgressTally } from '../progress.js';
import { blobSource } from './blob-source.js';
import { nobleHasher } from './noble-hasher.js';

/** The Cache API cache the files go in. */
export const CACHE_NAME = 'huggingface-hub';

export interface CacheSnapshotOptions {
  /** A branch, tag or commit; wins over `owner/name@revision`. Default: main. */
  readonly revision?: string;
  readonly progress?: ProgressCallback;
  /** Default: https://huggingface.co. */
  readonly endpoint?: string;
  /** An access token for gated or private models (sent to the endpoint's origin only). */
  readonly token?: string | null;
  readonly fetch?: typeof fetch;
  readonly signal?: AbortSignal;
  /** Default CACHE_NAME. */
  readonly cacheName?: string;
}

export interface CacheSnapshot {
  readonly repo: string;
  readonly revision: string;
  readonly commit: string;
  /** The model folder, read from the cache in slices: what core's loader takes. */
  readonly folder: FolderSource;
  readonly files: readonly string[];
}

/** Downloads what `model` needs into the Cache API (what is there already is read from it). */
export async function snapshotDownload(model: string, options: CacheSnapshotOptions = {}): Promise<CacheSnapshot> {
  const id = parseModelId(model, options.revision);
  const client = hubClient({
    endpoint: options.endpoint,
    token: options.token ?? null,
    tokenSource: 'token option',
    fetch: options.fetch,
    redirects: 'follow',
  });
  const cache = await caches.open(options.cacheName ?? CACHE_NAME);
  const info = await fetchRepoInfo(client, id);
  const tally = new ProgressTally(id.repo, options.progress);
  const keys = new Map<string, string>();
  const fetchFile = async (file: RepoFile) => {
    const key = resolveUrl(client, id.repo, info.commit, file.name);
    await cacheFile(cache, client, id, file, key, tally, options.signal);
    keys.set(file.name, key);
  };
  const files = firstFiles(id, info);
  for (const f of files) tally.expect(f.name, f.size);
  for (const file of files) await fetchFile(file);
  if (keys.has(SAFETENSORS_INDEX_FILE)) {
    const index = await (await cache.match(keys.get(SAFETENSORS_INDEX_FILE)!))!.text();
    const shards = shardFiles(id, info, index);
    for (const s of shards) tally.expect(s.name, s.size);
    for (const shard of shards) await fetchFile(shard);
  }
  return {
    repo: id.repo,
    revision: id.revision,
    commit: info.commit,
    folder: cacheFolder(cache, `hf:${id.repo}@${info.commit.slice(0, 8)}`, keys),
    files: [...keys.keys()],
  };
}

/** The marker entry that says `key` was checked whole. */
const verifiedKey = (key: string) => `${key}${key.includes('?') ? '&' : '?'}verified=1`;

async function cacheFile(
  cache: Cache,
  client: HubClient,
  id: HubModelId,
  file: RepoFile,
  key: string,
  tally: ProgressTally,
  signal?: AbortSignal,
): Promise<void> {
  const digest = fileDigest(id, file);
  const isCached = async () =>
    (await cache.match(verifiedKey(key))) !== undefined && (await cache.match(key)) !== undefined;
  const work = async () => {
    if (await isCached()) {
      tally.report(file.name, 'cached', file.size, file.size);
      return;
    }
    const { response } = await requestFile(client, id, key, 0, signal);
    if (!response.ok) throw await hubResponseError(client, id, response, file.name);
    if (!response.body) throw new HubRequestError(id.repo, id.revision, response.status, `${file.name}: no body`);
    const hasher = fileHasher(digest, file.size, nobleHasher);
    let loaded = 0;
    let lastReport = 0;
    const counted = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          hasher.update(chunk);
          loaded += chunk.length;
          const now = Date.now();
          if (now - lastReport >= 100) {
            lastReport = now;
            tally.report(file.name, 'downloading', loaded, file.size);
          }
          controller.enqueue(chunk);
        },
      }),
    );
    await cache.delete(verifiedKey(key));
    try {
      await cache.put(key, new Response(counted, { headers: { 'content-type': 'application/octet-stream' } }));
    } catch (error) {
      await cache.delete(key);
      throw new HubRequestError(
        id.repo,
        id.revision,
        null,
        `${file.name}: the transfer broke off after ${loaded} of ${file.size} bytes ` +
          `(${error instanceof Error ? error.message : String(error)}); try again`,
        { cause: error },
      );
    }
    const actual = hasher.hex();
    if ((file.size >= 0 && loaded !== file.size) || actual !== digest.hex) {
      await cache.delete(key);
      throw new HubChecksumError(
        id.repo,
        id.revision,
        file.name,
        file.size >= 0 && loaded !== file.size
          ? `${loaded} bytes arrived, the Hub lists ${file.size}`
          : `its ${digest.algorithm} is ${actual}, the Hub lists ${digest.hex}`,
      );
    }
    await cache.put(verifiedKey(key), new Response(digest.hex));
    tally.report(file.name, 'done', loaded, file.size);
  };
  // One tab at a time per file; the next one then finds it cached.
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (locks) await locks.request(`${CACHE_NAME}:${key}`, work);
  else await work();
}

function cacheFolder(cache: Cache, name: string, keys: ReadonlyMap<string, string>): FolderSource {
  const match = async (file: string) => {
    const key = keys.get(file);
    const response = key ? await cache.match(key) : undefined;
    if (!response) throw new CheckpointIOError(`${name}/${file}`, "not in the browser's cache (was it cleared?)");
    return response;
  };
  return {
    name,
    async exists(file) {
      return keys.has(file);
    },
    async readText(file) {
      return (await match(file)).text();
    },
    async open(file) {
      return blobSource(await (await match(file)).blob(), `${name}/${file}`);
    },
    async list() {
      return [...keys.keys()];
    },
  };
}
