/**
 * The kernel binaries: both flavours are valid WebAssembly, SIMD128 validates on every engine the
 * package supports, and the unshared-memory rewrite (for pages without cross-origin isolation)
 * changes exactly the memory import's shared flag.
 */
import { describe, expect, it } from 'vitest';
import { binary, supportedFlavours, withPrivateMemory } from '../src/wasm/loader.js';

describe('the kernel binaries', () => {
  it('SIMD128 validates here (Node 20 validates relaxed SIMD only behind a flag)', () => {
    expect(supportedFlavours()).toContain('simd128');
  });

  it.each(['simd128', 'relaxed-simd'] as const)(
    '%s: the unshared rewrite links against a private memory, the original does not',
    (flavour) => {
      const original = binary(flavour);
      const rewritten = withPrivateMemory(original);
      expect(rewritten.length).toBe(original.length);
      const changed = [...original.keys()].filter((i) => original[i] !== rewritten[i]);
      expect(changed).toHaveLength(1);
      expect([original[changed[0]], rewritten[changed[0]]]).toEqual([0x03, 0x01]);
      // Where this Node cannot validate relaxed SIMD, the child-Node test compiles it instead.
      if (flavour === 'relaxed-simd' && !WebAssembly.validate(rewritten)) return;
      const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536 });
      expect(() => new WebAssembly.Instance(new WebAssembly.Module(rewritten), { env: { memory } })).not.toThrow();
      expect(() => new WebAssembly.Instance(new WebAssembly.Module(original), { env: { memory } })).toThrow(
        WebAssembly.LinkError,
      );
    },
  );
});
