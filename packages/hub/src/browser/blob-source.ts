/** Byte sources over Blobs (a cached Response's body, a File a person chose): read in slices, never whole. */
import { type ByteSource, CheckpointIOError } from '@diff-transformer/core';

export function blobSource(blob: Blob, name: string): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > blob.size)
        throw new CheckpointIOError(name, `read of ${length} bytes at ${offset} is outside its ${blob.size} bytes`);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}
