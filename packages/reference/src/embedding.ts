import type { RefTensor } from './tensor.js';
import { refZeros } from './tensor.js';

/** table [V, E] gathered at integer ids [...] → [..., E]. */
export function embedding(table: RefTensor, ids: RefTensor): RefTensor {
  const [vocab, width] = table.shape;
  const out = refZeros([...ids.shape, width]);
  ids.data.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw new Error(`reference embedding: id ${id} outside [0, ${vocab})`);
    out.data.set(table.data.subarray(id * width, (id + 1) * width), i * width);
  });
  return out;
}

/** The table's gradient [V, E]: row v sums the rows of dy whose id is v. */
export function embeddingBackward(ids: RefTensor, dy: RefTensor, vocabSize: number): RefTensor {
  const width = dy.shape[dy.shape.length - 1];
  const out = refZeros([vocabSize, width]);
  ids.data.forEach((id, i) => {
    for (let j = 0; j < width; j++) out.data[id * width + j] += dy.data[i * width + j];
  });
  return out;
}
