/**
 * @diff-transformer/hub — models from the Hugging Face Hub. This entry is for browsers (and any
 * runtime with fetch and the Cache API); Node's, with the Hugging Face cache on disk shared with
 * Python, is '@diff-transformer/hub/node'.
 */
export {
  CACHE_NAME,
  type CacheSnapshot,
  type CacheSnapshotOptions,
  snapshotDownload,
} from './browser/cache-snapshot.js';
export { type FromPretrainedOptions, fromPretrained, type Pretrained } from './browser/from-pretrained.js';
export { blobSource } from './browser/blob-source.js';
export { tokenizerFromFolder } from './tokenizer-folder.js';
export * from './shared.js';
