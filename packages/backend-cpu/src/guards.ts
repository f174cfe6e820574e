/**
 * Guard mode of the CPU backend (core's BackendGuards): canary words right before and after every
 * storage made while it is on. Both engines keep their storages their own way (a block of the
 * WebAssembly heap, or a typed array of its own), so each supplies the words through a `GuardedBlock`;
 * the bookkeeping (which storages are guarded, which freed ones are held back until the next check) is
 * shared here.
 */
import type { DType, GuardViolation } from '@diff-transformer/core';

/** Canary words before a guarded storage: 64 bytes, so a tensor in the heap keeps its 64-byte alignment. */
export const GUARD_WORDS = 16;

/** The canary: a signalling-NaN bit pattern that no kernel computes (read and written as int32). */
export const CANARY = 0x7fa5a5a5;

/** A guarded storage as the guards see it. */
export interface GuardedBlock {
  readonly size: number;
  readonly dtype: DType;
  /** The words of its block: GUARD_WORDS canaries, the storage's `size` words, then canaries to the end. */
  words(): Int32Array;
  /** Gives the block back (the engine's own free); called once, when the storage is finally released. */
  release(): void;
}

/** Canary words of `words` in [from, to) that no longer hold the canary. */
function spoiled(words: Int32Array, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) if (words[i] !== CANARY) count++;
  return count;
}

/** Writes the canaries of a block (everything but the storage's own words). */
export function fillCanaries(block: GuardedBlock): void {
  const words = block.words();
  words.fill(CANARY, 0, GUARD_WORDS);
  words.fill(CANARY, GUARD_WORDS + block.size);
}

export class Guards<Handle> {
  #enabled = false;
  readonly #live = new Map<Handle, GuardedBlock>();
  readonly #held: GuardedBlock[] = [];

  get enabled(): boolean {
    return this.#enabled;
  }

  enable(on: boolean): void {
    this.#enabled = on;
    if (!on) this.#releaseHeld();
  }

  /** Records a storage just made in guard mode, its canaries written. */
  add(handle: Handle, block: GuardedBlock): void {
    fillCanaries(block);
    this.#live.set(handle, block);
  }

  /** Frees a storage: true if it was guarded (held back while guard mode is on, else released). */
  free(handle: Handle): boolean {
    const block = this.#live.get(handle);
    if (!block) return false;
    this.#live.delete(handle);
    if (this.#enabled) this.#held.push(block);
    else block.release();
    return true;
  }

  /** Checks every guarded storage, live or held; releases the held ones and re-arms the live ones. */
  check(): GuardViolation[] {
    const violations: GuardViolation[] = [];
    const inspect = (block: GuardedBlock) => {
      const words = block.words();
      const before = spoiled(words, 0, GUARD_WORDS);
      const after = spoiled(words, GUARD_WORDS + block.size, words.length);
      const { size, dtype } = block;
      if (before > 0) violations.push({ size, dtype, side: 'before', words: before });
      if (after > 0) violations.push({ size, dtype, side: 'after', words: after });
    };
    for (const block of this.#live.values()) {
      inspect(block);
      fillCanaries(block);
    }
    for (const block of this.#held) inspect(block);
    this.#releaseHeld();
    return violations;
  }

  #releaseHeld(): void {
    for (const block of this.#held.splice(0)) block.release();
  }
}
