import { ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertDType, assertFloat, kernelFor, wrapOutput } from './dispatch.js';

/**
 * Gathers rows of table [V, E] at int32 ids [...] → [..., E]. Ids must lie in [0, V); the model checks
 * them on the host before uploading (a kernel cannot throw from a device).
 */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  const { backend, impl } = kernelFor('embedding', [table, ids]);
  assertFloat('embedding table', table);
  assertDType('embedding ids', ids, 'int32');
  if (table.rank !== 2) throw new ShapeError('embedding table', '[vocab, dim]', table.shape);
  const out = { shape: [...ids.shape, table.shape[1]], dtype: table.dtype };
  return wrapOutput(backend, impl(table, ids, {}, out), out);
}
