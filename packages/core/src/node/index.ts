/**
 * @diff-transformer/core/node — file access for Node.js: byte sources over files (read in pieces, so
 * files larger than 2 GiB work), model folders, atomic writes, tokenizers from a folder. The main entry
 * stays browser-safe; everything that touches `fs` is here, one concern per file.
 */
export { writeFileAtomic } from './atomic-write.js';
export { settleFolder, writeFolderAtomic, type AtomicFolderOptions } from './atomic-folder.js';
export type { FolderFile } from '../io/folder-file.js';
export { directorySource, fileSource } from './file-source.js';
export { loadModel, readModel, saveDiffLlama, saveModel } from './model-folder.js';
export { readSafetensorsFile, writeSafetensorsFile } from './safetensors-file.js';
export { loadTokenizer } from './tokenizer.js';
export { ByteTokenizer, HuggingFaceTokenizer } from '../io/tokenizer.js';
