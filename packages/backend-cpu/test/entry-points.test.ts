/**
 * The one list of the C kernels' entry points (src/c-kernels/entry-points.ts) against what the two
 * builds expose. The C definitions are checked when they compile (each kernel file includes the
 * prototypes generated from the list) and the TypeScript callers when they typecheck (their types are
 * derived from it); this checks the products: the WebAssembly module exports exactly the entries both
 * engines have, each taking as many arguments as its entry lists, and the native addon binds every
 * entry, and nothing else beside its own heap and pool methods.
 */
import { describe, expect, it } from 'vitest';
import { ENTRY_POINTS } from '../src/c-kernels/entry-points.js';
import { loadNativeAddon } from '../src/native/loader.js';
import { loadKernels, supportedFlavours } from '../src/wasm/loader.js';

const names = Object.keys(ENTRY_POINTS).sort();
const shared = Object.entries(ENTRY_POINTS)
  .filter(([, entry]) => !('nativeOnly' in entry))
  .map(([name]) => name)
  .sort();

describe('the entry-point list', () => {
  it.each(supportedFlavours())('is what the %s module exports, with each arity', async (flavour) => {
    const { exports } = await loadKernels(flavour, false);
    const functions = Object.entries(exports).filter(([, value]) => typeof value === 'function');
    expect(functions.map(([name]) => name).sort()).toEqual(shared);
    for (const [name, fn] of functions) {
      // An exported WebAssembly function's length is its parameter count.
      expect([name, (fn as (...args: number[]) => unknown).length]).toEqual([
        name,
        ENTRY_POINTS[name as keyof typeof ENTRY_POINTS].parameters.length,
      ]);
    }
  });

  it('is what the native addon binds', async () => {
    const native = await loadNativeAddon();
    if (!native.ok) throw new Error(native.reason);
    const handle = native.addon.createEngine(1);
    try {
      const functions = Object.entries(handle)
        .filter(([, value]) => typeof value === 'function')
        .map(([name]) => name);
      expect(functions.filter((name) => !['run', 'stats', 'dispose'].includes(name)).sort()).toEqual(names);
    } finally {
      handle.dispose();
    }
  });
});
