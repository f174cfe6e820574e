/**
 * narrow and cacheWrite: copies, so they must be exact. The caches start full of other values, so a
 * write that touches the wrong rows (or zeroes the rest) shows.
 */
import { ops, sizeOf, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { RefTensor } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { defineCase } from './harness.js';
import { normal } from './inputs.js';

interface NarrowSpec {
  readonly shape: readonly number[];
  readonly axis: number;
  readonly start: number;
  readonly length: number;
}

const NARROW: readonly NarrowSpec[] = [
  { shape: [7, 33, 5], axis: 1, start: 3, length: 20 },
  { shape: [7, 33, 5], axis: 2, start: 1, length: 3 },
  { shape: [7, 33, 5], axis: 0, start: 6, length: 1 },
  // The model's lastTokenOnly: the last row along a negative axis.
  { shape: [2, 129], axis: -1, start: 128, length: 1 },
];

function narrowCase(spec: NarrowSpec): ConformanceCase {
  const name = `narrow/[${spec.shape.join(', ')}] axis ${spec.axis} [${spec.start}, ${spec.start + spec.length})`;
  return defineCase(name, 'narrow', async (ws, random) => {
    const x = await ws.floats(normal(random, sizeOf(spec.shape)), spec.shape);
    const out = ws.own(tidy(() => ops.narrow(x.tensor, spec.axis, spec.start, spec.length)));
    const axis = spec.axis < 0 ? spec.axis + spec.shape.length : spec.axis;
    return [
      {
        label: 'output',
        actual: await ws.read(out),
        expected: reference.narrow(x.ref, { axis, start: spec.start, length: spec.length }),
      },
    ];
  });
}

interface CacheWriteSpec {
  readonly cache: readonly number[];
  /** Successive writes: tokens written at position. */
  readonly writes: ReadonlyArray<{ readonly tokens: number; readonly position: number }>;
}

const CACHE_WRITE: readonly CacheWriteSpec[] = [
  { cache: [2, 33, 4, 16], writes: [{ tokens: 7, position: 0 }] },
  { cache: [2, 33, 4, 16], writes: [{ tokens: 1, position: 32 }] },
  {
    cache: [1, 20, 2, 8],
    writes: [
      { tokens: 5, position: 0 },
      { tokens: 1, position: 5 },
      { tokens: 3, position: 6 },
    ],
  },
  { cache: [1, 9, 7], writes: [{ tokens: 2, position: 4 }] },
  { cache: [3, 10, 3, 33], writes: [{ tokens: 3, position: 7 }] },
];

function cacheWriteCase(spec: CacheWriteSpec): ConformanceCase {
  const writes = spec.writes.map((w) => `${w.tokens} at ${w.position}`).join(', then ');
  return defineCase(`cacheWrite/[${spec.cache.join(', ')}] ${writes}`, 'cacheWrite', async (ws, random) => {
    const cache = await ws.floats(normal(random, sizeOf(spec.cache)), spec.cache);
    let expected: RefTensor = cache.ref;
    for (const write of spec.writes) {
      const shape = [spec.cache[0], write.tokens, ...spec.cache.slice(2)];
      const values = await ws.floats(normal(random, sizeOf(shape)), shape);
      ops.cacheWrite(cache.tensor, values.tensor, write.position);
      expected = reference.cacheWrite(expected, values.ref, { position: write.position });
    }
    return [{ label: 'cache', actual: await ws.read(cache.tensor), expected }];
  });
}

export function memoryCases(): ConformanceCase[] {
  return [...NARROW.map(narrowCase), ...CACHE_WRITE.map(cacheWriteCase)];
}
