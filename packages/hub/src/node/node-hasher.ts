/** Streaming sha256 and sha1 through node:crypto (OpenSSL, several GB/s where the CPU has SHA extensions). */
import { createHash } from 'node:crypto';
import type { HasherFactory } from '../digest.js';

export const nodeHasher: HasherFactory = (algorithm) => {
  const hash = createHash(algorithm);
  return {
    update: (bytes) => void hash.update(bytes),
    hex: () => hash.digest('hex'),
  };
};
