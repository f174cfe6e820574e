/**
 * A model folder over the files a person picked or dropped: each file is read in slices when the
 * loader asks, so a large checkpoint is never copied whole into memory.
 */
import { type ByteSource, CheckpointIOError, type FolderSource } from '@diff-transformer/core';
import type { PickedFile } from './protocol.js';

export function blobSource(blob: Blob, name: string): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > blob.size) {
        throw new CheckpointIOError(name, `read of ${length} bytes at ${offset} is outside its ${blob.size} bytes`);
      }
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/** Files by their name inside the folder; a name with a path keeps only its last part. */
export function blobFolder(name: string, files: readonly PickedFile[]): FolderSource {
  const byName = new Map(files.map((f) => [f.name.split('/').pop()!, f.file]));
  const get = (file: string) => {
    const blob = byName.get(file);
    if (!blob) throw new CheckpointIOError(`${name}/${file}`, 'no such file among those chosen');
    return blob;
  };
  return {
    name,
    async exists(file) {
      return byName.has(file);
    },
    async readText(file) {
      return get(file).text();
    },
    async open(file) {
      return blobSource(get(file), `${name}/${file}`);
    },
    async list() {
      return [...byName.keys()];
    },
  };
}
