/**
 * A model's snapshot folder in the Hugging Face cache, downloaded as needed: config, generation config
 * and tokenizer files where present, and the safetensors (one file, or the index and every shard it
 * names). Each blob is checked before it is kept; the snapshot's links are made only once every file
 * is in, so a failed download adds nothing to it. Offline (HF_HUB_OFFLINE=1, or `offline`), only the
 * cache is read, and what it lacks is named.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, CONFIG_FILE } from '@diff-transformer/core';
import { fetchRepoInfo, hubClient, type RepoFile } from '../api.js';
import { HubOfflineError, HubRequestError } from '../errors.js';
import { COMMIT_HASH, type HubModelId, parseModelId } from '../model-id.js';
import { fileDigest, firstFiles, OPTIONAL_FILES, shardFiles, shardNames } from '../model-files.js';
import { type ProgressCallback, ProgressTally } from '../progress.js';
import {
  cachedCommit,
  cachedFile,
  linkSnapshotFile,
  type RepoCache,
  repoCache,
  snapshotDir,
  writeRef,
} from './cache-layout.js';
import { ensureBlob } from './download-blob.js';
import { hubEnvironment } from './env.js';

export interface SnapshotOptions {
  /** A branch, tag or commit; wins over `owner/name@revision`. Default: main. */
  readonly revision?: string;
  readonly progress?: ProgressCallback;
  /** Default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
  readonly cacheDir?: string;
  /** Default: HF_ENDPOINT, else https://huggingface.co. */
  readonly endpoint?: string;
  /** Default: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, or the token file; null sends none. */
  readonly token?: string | null;
  /** Use the cache only. Default: HF_HUB_OFFLINE. */
  readonly offline?: boolean;
  readonly fetch?: typeof fetch;
  readonly signal?: AbortSignal;
  /** Resumed retries of a broken transfer. Default 5. */
  readonly retries?: number;
  /** Default 1000 ms, doubling. */
  readonly retryDelayMs?: number;
  /** Told when the Hub cannot be reached and the cached snapshot is used instead. */
  readonly notice?: (message: string) => void;
}

export interface Snapshot {
  readonly repo: string;
  readonly revision: string;
  readonly commit: string;
  /** The snapshot folder: a model folder core's loader reads. */
  readonly path: string;
  /** The files in it that the model uses. */
  readonly files: readonly string[];
}

/** Downloads what `model` (`owner/name[@revision]`, `hf:` optional) needs; returns its snapshot folder. */
export async function snapshotDownload(model: string, options: SnapshotOptions = {}): Promise<Snapshot> {
  const env = hubEnvironment();
  const id = parseModelId(model, options.revision);
  const cache = repoCache(options.cacheDir ?? env.cacheDir, id.repo);
  const offline = options.offline ?? env.offline;
  if (offline)
    return fromCache(cache, id, options.offline ? 'offline (the offline option)' : 'offline (HF_HUB_OFFLINE is set)');
  // A commit never moves: a complete snapshot of one needs no request.
  if (COMMIT_HASH.test(id.revision)) {
    const cached = await cachedSnapshot(cache, id);
    if ('snapshot' in cached) return cached.snapshot;
  }
  const useEnvToken = options.token === undefined;
  const client = hubClient({
    endpoint: options.endpoint ?? env.endpoint,
    token: useEnvToken ? env.token : options.token,
    tokenSource: useEnvToken ? env.tokenSource : 'token option',
    fetch: options.fetch,
  });
  let info: Awaited<ReturnType<typeof fetchRepoInfo>>;
  try {
    info = await fetchRepoInfo(client, id);
  } catch (error) {
    // Unreachable (not refused): what the cache holds still serves, as huggingface_hub does.
    if (!(error instanceof HubRequestError) || error.status !== null) throw error;
    const cached = await cachedSnapshot(cache, id);
    if (!('snapshot' in cached)) throw error;
    options.notice?.(`${error.message}; using the cached snapshot ${cached.snapshot.commit}`);
    return cached.snapshot;
  }
  const tally = new ProgressTally(id.repo, options.progress);
  const task = {
    client,
    id,
    commit: info.commit,
    cache,
    tally,
    retries: options.retries ?? 5,
    retryDelayMs: options.retryDelayMs ?? 1000,
    signal: options.signal,
  };
  const fetchFile = async (file: RepoFile) => {
    const digest = fileDigest(id, file);
    const blob = await ensureBlob({ ...task, file, digest });
    return { name: file.name, etag: digest.hex, blob };
  };
  const files = firstFiles(id, info);
  for (const f of files) tally.expect(f.name, f.size);
  const fetched = [];
  for (const file of files) fetched.push(await fetchFile(file));
  const index = fetched.find((f) => f.name === SAFETENSORS_INDEX_FILE);
  if (index) {
    const shards = shardFiles(id, info, await readFile(index.blob, 'utf8'));
    for (const s of shards) tally.expect(s.name, s.size);
    for (const shard of shards) fetched.push(await fetchFile(shard));
  }
  // Every file is in and checked: now, and only now, the snapshot shows them.
  for (const f of fetched) await linkSnapshotFile(cache, info.commit, f.name, f.etag);
  await writeRef(cache, id.revision, info.commit);
  return {
    repo: id.repo,
    revision: id.revision,
    commit: info.commit,
    path: snapshotDir(cache, info.commit),
    files: fetched.map((f) => f.name),
  };
}

/** The cached snapshot of `id` if it holds a loadable model (config and every weight file), or what it lacks. */
async function cachedSnapshot(
  cache: RepoCache,
  id: HubModelId,
): Promise<{ snapshot: Snapshot } | { commit: string | null; missing: string[] }> {
  const commit = await cachedCommit(cache, id.revision);
  if (!commit) return { commit, missing: [`refs/${id.revision}`] };
  const has = async (name: string) => (await cachedFile(cache, id, commit, name)) !== null;
  const missing: string[] = [];
  const files: string[] = [];
  for (const name of [CONFIG_FILE, ...OPTIONAL_FILES]) if (await has(name)) files.push(name);
  if (!files.includes(CONFIG_FILE)) missing.push(CONFIG_FILE);
  if (await has(SAFETENSORS_FILE)) files.push(SAFETENSORS_FILE);
  else if (await has(SAFETENSORS_INDEX_FILE)) {
    files.push(SAFETENSORS_INDEX_FILE);
    const text = await readFile(join(snapshotDir(cache, commit), SAFETENSORS_INDEX_FILE), 'utf8');
    for (const shard of shardNames(id, text)) ((await has(shard)) ? files : missing).push(shard);
  } else missing.push(`${SAFETENSORS_FILE} (or ${SAFETENSORS_INDEX_FILE} and its shards)`);
  if (missing.length) return { commit, missing };
  return { snapshot: { repo: id.repo, revision: id.revision, commit, path: snapshotDir(cache, commit), files } };
}

/** The cached snapshot, or a HubOfflineError naming what is missing; `why` says why only the cache is read. */
async function fromCache(cache: RepoCache, id: HubModelId, why: string): Promise<Snapshot> {
  const found = await cachedSnapshot(cache, id);
  if ('snapshot' in found) return found.snapshot;
  const hint = 'run once with network access (without HF_HUB_OFFLINE) to download it';
  throw new HubOfflineError(
    id.repo,
    id.revision,
    found.missing,
    found.commit === null
      ? `${why}, and the cache ${cache.storage} has no snapshot of revision ${id.revision}; ${hint}`
      : `${why}, and the cached snapshot ${found.commit} lacks ${found.missing.join(', ')}; ${hint}`,
  );
}
