/** `fromPretrained('owner/name')` in a browser: the snapshot in the Cache API, loaded by core's folder loader. */
import {
  type DiffTransformer,
  type LoadOptions,
  loadModelFromFolder,
  type ModelOptions,
  type Tokenizer,
} from '@diff-transformer/core';
import { tokenizerFromFolder } from '../tokenizer-folder.js';
import { type CacheSnapshot, type CacheSnapshotOptions, snapshotDownload } from './cache-snapshot.js';

export interface FromPretrainedOptions extends CacheSnapshotOptions, ModelOptions, LoadOptions {}

export interface Pretrained {
  readonly model: DiffTransformer;
  readonly tokenizer: Tokenizer | null;
  readonly snapshot: CacheSnapshot;
}

export async function fromPretrained(model: string, options: FromPretrainedOptions = {}): Promise<Pretrained> {
  const { revision, progress, endpoint, token, fetch, signal, cacheName, ...loadOptions } = options;
  const snapshot = await snapshotDownload(model, { revision, progress, endpoint, token, fetch, signal, cacheName });
  const tokenizer = await tokenizerFromFolder(snapshot.folder);
  const loaded = await loadModelFromFolder(snapshot.folder, loadOptions);
  return { model: loaded, tokenizer, snapshot };
}
