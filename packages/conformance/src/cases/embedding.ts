/** embedding: gathers rows, including the first and last id of the vocabulary and repeated ids. */
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import { elementCount } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { defineCase } from './harness.js';
import { integers, normal } from './inputs.js';

interface EmbeddingSpec {
  readonly vocab: number;
  readonly width: number;
  readonly ids: readonly number[];
}

const SPECS: readonly EmbeddingSpec[] = [
  { vocab: 129, width: 33, ids: [2, 7] },
  { vocab: 7, width: 1, ids: [1] },
  { vocab: 33, width: 16, ids: [2, 3, 4] },
];

function embeddingCase(spec: EmbeddingSpec): ConformanceCase {
  const name = `embedding/vocab ${spec.vocab} width ${spec.width} ids [${spec.ids.join(', ')}]`;
  return defineCase(name, 'embedding', async (ws, random) => {
    const table = await ws.floats(normal(random, spec.vocab * spec.width), [spec.vocab, spec.width]);
    const count = elementCount(spec.ids);
    const values = integers(random, count, spec.vocab);
    // The edges of the table, and a repeat, are where an off-by-one shows.
    values[0] = spec.vocab - 1;
    if (count > 2) {
      values[1] = 0;
      values[2] = values[count - 1];
    }
    const ids = ws.ints(values, spec.ids);
    const out = ws.own(tidy(() => ops.embedding(table.tensor, ids.tensor)));
    return [{ label: 'output', actual: await ws.read(out), expected: reference.embedding(table.ref, ids.ref) }];
  });
}

export function embeddingCases(): ConformanceCase[] {
  return SPECS.map(embeddingCase);
}
