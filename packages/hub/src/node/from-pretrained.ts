/**
 * `fromPretrained('owner/name')`: the snapshot from the Hub (or the cache), loaded by core's folder
 * loader onto a backend, with its tokenizer, as transformers' from_pretrained gives model and tokenizer.
 */
import {
  type DiffTransformer,
  type LoadOptions,
  loadModelFromFolder,
  type ModelOptions,
  type Tokenizer,
} from '@diff-transformer/core';
import { directorySource, loadTokenizer } from '@diff-transformer/core/node';
import { type Snapshot, type SnapshotOptions, snapshotDownload } from './snapshot-download.js';

export interface FromPretrainedOptions extends SnapshotOptions, ModelOptions, LoadOptions {}

export interface Pretrained {
  readonly model: DiffTransformer;
  /** tokenizer.json through @huggingface/tokenizers, or null when the repository has none. */
  readonly tokenizer: Tokenizer | null;
  readonly snapshot: Snapshot;
}

/** Downloads (or finds in the cache) `model` — `owner/name[@revision]` — and loads it. */
export async function fromPretrained(model: string, options: FromPretrainedOptions = {}): Promise<Pretrained> {
  const {
    revision,
    progress,
    cacheDir,
    endpoint,
    token,
    offline,
    fetch,
    signal,
    retries,
    retryDelayMs,
    notice,
    ...loadOptions
  } = options;
  const snapshot = await snapshotDownload(model, {
    revision,
    progress,
    cacheDir,
    endpoint,
    token,
    offline,
    fetch,
    signal,
    retries,
    retryDelayMs,
    notice,
  });
  // The tokenizer first: a broken one then leaves no model allocated.
  const tokenizer = await loadTokenizer(snapshot.path);
  const loaded = await loadModelFromFolder(directorySource(snapshot.path), loadOptions);
  return { model: loaded, tokenizer, snapshot };
}
