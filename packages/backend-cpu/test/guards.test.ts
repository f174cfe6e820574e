/**
 * Guard mode (core's BackendGuards) on both engines: canaries right before and after every storage,
 * held back when freed until the next check. A kernel that writes one element past its output, or one
 * before it, fails its conformance cases; the correct kernels pass with guard mode on.
 */
import type { GuardViolation, InferenceKernels, StorageHandle } from '@diff-transformer/core';
import { ops, tensor } from '@diff-transformer/core';
import { runConformance } from '@diff-transformer/conformance';
import { afterAll, describe, expect, it } from 'vitest';
import { backendOf } from '../src/backend.js';
import type { Engine } from '../src/engines/engine.js';
import { createTypeScriptEngine } from '../src/engines/typescript.js';
import { createWebAssemblyEngine } from '../src/engines/webassembly.js';
import type { HeapStorage } from '../src/heap/heap.js';

/** Writes one float32 word at element `index` of a storage, counted from its first element. */
type Poke = (storage: StorageHandle, index: number) => void;

const wasm = await createWebAssemblyEngine({ flavour: 'simd128', threads: 1, shared: false });
const engines: Array<{ name: string; engine: Engine; poke: Poke }> = [
  {
    name: 'WebAssembly heap',
    engine: wasm,
    // A C kernel with an off-by-one writes through a pointer: the word next to the block's elements.
    poke: (storage, index) => {
      const { offset } = storage as HeapStorage;
      new Float32Array(wasm.heap.memory.buffer, offset + 4 * index, 1)[0] = 1;
    },
  },
  {
    name: 'TypeScript engine',
    engine: createTypeScriptEngine(),
    // A typed array drops writes past its own end; only a write through its buffer gets there.
    poke: (storage, index) => {
      const array = storage as Float32Array;
      new Float32Array(array.buffer, array.byteOffset + 4 * index, 1)[0] = 1;
    },
  },
];
afterAll(() => wasm.dispose());

/** The engine with `add` replaced by the correct add followed by one stray write at `index(length)`. */
function strayAdd(engine: Engine, poke: Poke, index: (length: number) => number): Engine {
  const add: InferenceKernels['add'] = (a, b, attrs, out) => {
    const y = engine.kernels.add(a, b, attrs, out);
    poke(y, index(out.shape.reduce((p, d) => p * d, 1)));
    return y;
  };
  return { ...engine, kernels: { ...engine.kernels, add } };
}

describe.each(engines)('guard mode ($name)', ({ engine, poke }) => {
  it('a kernel writing one element past its output fails every add case; the others pass', async () => {
    const backend = backendOf(strayAdd(engine, poke, (length) => length));
    const report = await runConformance(backend, { filter: /^(add|swiglu)\// });
    const add = report.cases.filter((r) => r.kernel === 'add');
    expect(add.length).toBeGreaterThanOrEqual(3);
    for (const r of add) {
      expect(r.status, r.name).toBe('fail');
      expect(r.message).toMatch(
        /^a kernel wrote outside its storage: 1 canary word\(s\) after the last element of a float32 storage of \d+$/,
      );
      // The output itself is right: only the guard sees the stray write.
      expect(r.nmse!).toBeLessThanOrEqual(r.tolerance);
      expect(r.elementError!).toBeLessThanOrEqual(1);
    }
    for (const r of report.cases.filter((c) => c.kernel === 'swiglu')) expect(r.status, r.name).toBe('pass');
    expect(backend.guards.enabled).toBe(false);
  });

  it('a kernel writing one element before its output is caught too', async () => {
    const backend = backendOf(strayAdd(engine, poke, () => -1));
    const report = await runConformance(backend, { filter: /^add\// });
    for (const r of report.cases) {
      expect(r.message, r.name).toMatch(/1 canary word\(s\) before the first element of a float32 storage/);
    }
  });

  it('the correct kernels pass every inference case in guard mode', async () => {
    const report = await runConformance(backendOf(engine), {
      filter: /^(matmul|embedding|rmsNorm|rotary|swiglu|add|sigmoid|diffAttention|attention|softmax|argmax|narrow)\//,
    });
    expect(report.summary.fail).toBe(0);
  });

  it('holds freed storages until the check, reports each violation once, and releases them when off', async () => {
    const backend = backendOf(engine);
    backend.guards.enable(true);
    const before = backend.heapStats()?.usedBytes;
    const x = tensor([1, 2, 3], [3], { backend });
    const y = ops.add(x, x);
    poke(y.storage, 3);
    y.dispose();
    x.dispose();
    // Freed, but held back: the heap has not got the blocks back yet.
    if (before !== undefined) expect(backend.heapStats()!.usedBytes).toBeGreaterThan(before);
    const expected: GuardViolation[] = [{ size: 3, dtype: 'float32', side: 'after', words: 1 }];
    expect(await backend.guards.check()).toEqual(expected);
    expect(await backend.guards.check()).toEqual([]);
    if (before !== undefined) expect(backend.heapStats()!.usedBytes).toBe(before);
    // A live storage's guard is re-armed after a check: its next violation is reported again.
    const z = tensor([1, 2], [2], { backend });
    poke(z.storage, 2);
    expect(await backend.guards.check()).toEqual([{ size: 2, dtype: 'float32', side: 'after', words: 1 }]);
    poke(z.storage, -1);
    expect(await backend.guards.check()).toEqual([{ size: 2, dtype: 'float32', side: 'before', words: 1 }]);
    backend.guards.enable(false);
    z.dispose();
    if (before !== undefined) expect(backend.heapStats()!.usedBytes).toBe(before);
  });
});
