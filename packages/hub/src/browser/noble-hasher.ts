/** Streaming sha256 and sha1 in any JavaScript engine (@noble/hashes: audited, no dependencies). */
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { HasherFactory } from '../digest.js';

export const nobleHasher: HasherFactory = (algorithm) => {
  const hash = algorithm === 'sha256' ? sha256.create() : sha1.create();
  return {
    update: (bytes) => void hash.update(bytes),
    hex: () => bytesToHex(hash.digest()),
  };
};
