/**
 * Checksums computed as the bytes arrive. The hash functions come from the platform (node:crypto in
 * Node, @noble/hashes in browsers, where WebCrypto cannot hash a stream); this file adds git's blob
 * header for plain files, whose Hub checksum is the git object id.
 */
import type { FileDigest } from './model-files.js';

export interface Hasher {
  update(bytes: Uint8Array): void;
  /** The digest in lower-case hex; call once, at the end. */
  hex(): string;
}

export type HashAlgorithm = 'sha256' | 'sha1';
export type HasherFactory = (algorithm: HashAlgorithm) => Hasher;

/** A hasher for `digest`: sha256 of the content, or sha1 of `blob SIZE\0` + content (git's object id). */
export function fileHasher(digest: FileDigest, size: number, make: HasherFactory): Hasher {
  if (digest.algorithm === 'sha256') return make('sha256');
  const hasher = make('sha1');
  hasher.update(new TextEncoder().encode(`blob ${size}\0`));
  return hasher;
}
