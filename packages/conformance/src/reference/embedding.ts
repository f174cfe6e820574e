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
