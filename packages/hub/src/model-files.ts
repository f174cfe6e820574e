/**
 * Which files of a repository make a model folder the loader reads, and the checks on their names:
 * every name, whether the server listed it or a shard index did, must be one plain file name inside
 * the snapshot folder (the loader reads shards from the same folder too).
 */
import { CONFIG_FILE, SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE } from '@diff-transformer/core';
import type { RepoFile, RepoInfo } from './api.js';
import { HubRepoContentError, HubUnsafePathError } from './errors.js';
import type { HubModelId } from './model-id.js';

/** Fetched when the repository has them: generation defaults and the tokenizer. */
export const OPTIONAL_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
] as const;

/** Refuses a name that is not one plain file name (`../x`, `/etc/x`, `a/b`, `C:\x`, `.`, NUL). */
function checkFileName(id: HubModelId, name: string, from: string): string {
  const problem =
    typeof name !== 'string' || name === ''
      ? 'it is empty'
      : name === '.' || name === '..'
        ? 'it names a folder'
        : /[/\\]/.test(name)
          ? 'it has a path separator (only files beside config.json are read)'
          : // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
            /[\u0000-\u001f]/.test(name) || /^[A-Za-z]:/.test(name)
            ? 'it is not a plain file name'
            : null;
  if (problem) throw new HubUnsafePathError(id.repo, id.revision, name, `from ${from}, ${problem}`);
  return name;
}

/** The files to fetch first: config, the optional ones present, and the weights (or their index). */
export function firstFiles(id: HubModelId, info: RepoInfo): RepoFile[] {
  const has = (name: string) => info.files.get(name);
  const config = has(CONFIG_FILE);
  if (!config) throw new HubRepoContentError(id.repo, id.revision, `no ${CONFIG_FILE}: ${listing(info)}`);
  const weights = has(SAFETENSORS_FILE) ?? has(SAFETENSORS_INDEX_FILE);
  if (!weights)
    throw new HubRepoContentError(
      id.repo,
      id.revision,
      `no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE}: only safetensors checkpoints are read (${listing(info)})`,
    );
  const optional = OPTIONAL_FILES.map(has).filter((f): f is RepoFile => f !== undefined);
  return [config, ...optional, weights];
}

/** The shard file names an index's weight_map holds, each checked to be a plain file name. */
export function shardNames(id: HubModelId, indexText: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(indexText);
  } catch (error) {
    throw new HubRepoContentError(
      id.repo,
      id.revision,
      `${SAFETENSORS_INDEX_FILE} is not JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new HubRepoContentError(id.repo, id.revision, `${SAFETENSORS_INDEX_FILE} has no "weight_map" object`);
  const names = new Set<string>();
  for (const shard of Object.values(map as Record<string, unknown>)) {
    if (typeof shard !== 'string')
      throw new HubRepoContentError(
        id.repo,
        id.revision,
        `${SAFETENSORS_INDEX_FILE}: a weight_map entry is not a name`,
      );
    names.add(checkFileName(id, shard, SAFETENSORS_INDEX_FILE));
  }
  if (names.size === 0) throw new HubRepoContentError(id.repo, id.revision, `${SAFETENSORS_INDEX_FILE} names no shard`);
  return [...names];
}

/** The shards an index names, looked up in the repository's listing. */
export function shardFiles(id: HubModelId, info: RepoInfo, indexText: string): RepoFile[] {
  return shardNames(id, indexText).map((name) => {
    const file = info.files.get(name);
    if (!file)
      throw new HubRepoContentError(
        id.repo,
        id.revision,
        `${SAFETENSORS_INDEX_FILE} names ${name}, which the repository does not have`,
      );
    return file;
  });
}

/** How a file is checked once downloaded, and the name of its blob in the cache (huggingface_hub's etag). */
export interface FileDigest {
  /** sha256 of the content (LFS files), or the git blob sha1 (`blob SIZE\0` + content) of plain files. */
  readonly algorithm: 'sha256' | 'git-sha1';
  readonly hex: string;
}

export function fileDigest(id: HubModelId, file: RepoFile): FileDigest {
  if (file.sha256) return { algorithm: 'sha256', hex: file.sha256 };
  if (file.blobId) return { algorithm: 'git-sha1', hex: file.blobId };
  throw new HubRepoContentError(
    id.repo,
    id.revision,
    `${file.name}: the model info gives neither its LFS sha256 nor its git blob id, so it cannot be checked`,
  );
}

function listing(info: RepoInfo): string {
  const names = [...info.files.keys()];
  return names.length
    ? `the repository has ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', …' : ''}`
    : 'the repository is empty';
}
