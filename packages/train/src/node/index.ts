/**
 * @diff-transformer/train/node — the file side of training: text files, folders and the built-in Brown
 * corpus; checkpoints written atomically and read back for --resume; the training log; export to a
 * transformers DiffLlama folder or to ONNX.
 */
export { loadTextData, readTextDocuments, brownDocuments, brownFolder, BROWN, type TextData } from './data.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  isCheckpointFile,
  isFreshFolder,
  type LoadedCheckpoint,
} from './checkpoint.js';
export { TrainLog, type LogRecord } from './log.js';
export { exportModel, EXPORT_TOLERANCE, type ExportOptions, type ExportResult } from './export.js';
export { byteTokenizer, loadTokenizerFile, type RunTokenizer } from './tokenizer.js';
export { resolvePreset } from './preset.js';
