/**
 * A model folder over the files a person picked or dropped: each file is read in slices when the
 * loader asks (hub's blobSource, as for the Hub's cached files), so a large checkpoint is never copied
 * whole into memory.
 */
import { CheckpointIOError, type FolderSource } from '@diff-transformer/core';
import { blobSource } from '@diff-transformer/hub';
import type { PickedFile } from './protocol.js';

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
