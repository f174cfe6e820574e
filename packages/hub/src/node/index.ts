/**
 * @diff-transformer/hub/node — models from the Hugging Face Hub into the Hugging Face cache on disk
 * (shared with Python's huggingface_hub), then core's folder loader. The main entry is the browser's.
 */
export { fromPretrained, type FromPretrainedOptions, type Pretrained } from './from-pretrained.js';
export { type Snapshot, type SnapshotOptions, snapshotDownload } from './snapshot-download.js';
export { hubEnvironment, type HubEnvironment } from './env.js';
export * from '../shared.js';
