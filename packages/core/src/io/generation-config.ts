/**
 * A model folder's generation defaults, as transformers' generate() takes them: generation_config.json
 * (eos_token_id as one id or a list; do_sample, temperature, top_k, top_p), with config.json's
 * eos_token_id / bos_token_id where it has none. Browser-safe: it reads through a FolderSource.
 */
import type { SamplingOptions } from '../model/sampling.js';
import { CheckpointConfigError, CheckpointError } from './errors.js';
import type { FolderSource } from './byte-source.js';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

export interface GenerationDefaults {
  /** Ids that end generation (the one produced is still emitted); empty when the folder names none. */
  readonly eosTokenIds: readonly number[];
  readonly bosTokenId: number | null;
  /**
   * Greedy unless do_sample is true; then transformers' defaults for what the file leaves out:
   * temperature 1, top_k 50, top_p 1 (top_k 0 keeps every token).
   */
  readonly sampling: SamplingOptions;
  /** The file the values came from (generation_config.json, else config.json), or null for none. */
  readonly source: string | null;
}

/** transformers' GenerationConfig defaults for sampling. */
const DEFAULT_TOP_K = 50;

/** Reads generation_config.json (and config.json for ids it lacks); a folder with neither gives greedy, no eos. */
export async function readGenerationDefaults(folder: FolderSource): Promise<GenerationDefaults> {
  const generation = await readJsonObject(folder, GENERATION_CONFIG_FILE);
  const config = await readJsonObject(folder, 'config.json');
  const genFile = `${folder.name}/${GENERATION_CONFIG_FILE}`;
  const configFile = `${folder.name}/config.json`;
  const eosFrom = generation?.eos_token_id !== undefined && generation.eos_token_id !== null ? generation : config;
  const eosFile = eosFrom === generation ? genFile : configFile;
  const eosTokenIds = tokenIds(eosFrom?.eos_token_id, eosFile, 'eos_token_id');
  const bosFrom = generation?.bos_token_id !== undefined && generation.bos_token_id !== null ? generation : config;
  const [bosTokenId = null] = tokenIds(
    bosFrom?.bos_token_id,
    bosFrom === generation ? genFile : configFile,
    'bos_token_id',
  );
  return {
    eosTokenIds,
    bosTokenId,
    sampling: generation ? samplingOf(generation, genFile) : { greedy: true },
    source: generation ? genFile : config ? configFile : null,
  };
}

function samplingOf(json: Record<string, unknown>, file: string): SamplingOptions {
  const doSample = json.do_sample ?? false;
  if (typeof doSample !== 'boolean')
    throw new CheckpointConfigError(file, 'do_sample', `expected true or false, got ${JSON.stringify(doSample)}`);
  const number = (field: string, ok: (x: number) => boolean, expected: string, fallback: number): number => {
    const value = json[field] ?? fallback;
    if (typeof value !== 'number' || !ok(value))
      throw new CheckpointConfigError(file, field, `expected ${expected}, got ${JSON.stringify(value)}`);
    return value;
  };
  // As transformers: without do_sample the sampling fields are ignored (it only warns about them).
  if (!doSample) return { greedy: true };
  const temperature = number('temperature', (x) => x > 0 && Number.isFinite(x), 'a number > 0', 1);
  const topK = number('top_k', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0', DEFAULT_TOP_K);
  const topP = number('top_p', (x) => x > 0 && x <= 1, 'a number in (0, 1]', 1);
  return { temperature, ...(topK > 0 ? { topK } : {}), ...(topP < 1 ? { topP } : {}) };
}

/** One id or a list of ids; absent or null gives []. */
function tokenIds(value: unknown, file: string, field: string): number[] {
  if (value === undefined || value === null) return [];
  const ids = Array.isArray(value) ? value : [value];
  if (!ids.every((id) => Number.isSafeInteger(id) && (id as number) >= 0))
    throw new CheckpointConfigError(
      file,
      field,
      `expected a token id or a list of ids (integers ≥ 0), got ${JSON.stringify(value)}`,
    );
  return ids as number[];
}

/** A JSON object file of the folder, or null when it has none. */
export async function readJsonObject(folder: FolderSource, name: string): Promise<Record<string, unknown> | null> {
  if (!(await folder.exists(name))) return null;
  let json: unknown;
  try {
    json = JSON.parse(await folder.readText(name));
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointConfigError(
      `${folder.name}/${name}`,
      null,
      `not valid JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new CheckpointConfigError(`${folder.name}/${name}`, null, 'expected a JSON object');
  return json as Record<string, unknown>;
}
