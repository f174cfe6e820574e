import { ArgumentError, ShapeError, formatShape } from '../errors.js';
import { shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { assertDType, assertFloat, wrapOutput } from './dispatch.js';
import { runOp, runWithoutGradient } from './run.js';

/**
 * Gathers rows of table [V, E] at int32 ids [...] → [..., E]. Ids must lie in [0, V); the model checks
 * them on the host before uploading (a kernel cannot throw from a device).
 */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  return runOp('embedding', [table, ids], {}, ({ kernel }) => {
    const { backend, impl } = kernel('embedding');
    assertFloat('embedding table', table);
    assertDType('embedding ids', ids, 'int32');
    if (table.rank !== 2) throw new ShapeError('embedding table', '[vocab, dim]', table.shape);
    const out = { shape: [...ids.shape, table.shape[1]], dtype: table.dtype };
    return { y: wrapOutput(backend, impl(table, ids, {}, out), out) };
  });
}

/** The table's gradient [V, E] from ids [...] and dy [..., E] (see EmbeddingBackwardAttrs). */
export function embeddingBackward(ids: Tensor, dy: Tensor, vocabSize: number): Tensor {
  return runWithoutGradient('embeddingBackward', [ids, dy], ({ kernel }) => {
    const { backend, impl } = kernel('embeddingBackward', [dy, ids]);
    assertFloat('embeddingBackward dy', dy);
    assertDType('embeddingBackward ids', ids, 'int32');
    if (dy.rank !== ids.rank + 1 || !shapesEqual(dy.shape.slice(0, -1), ids.shape)) {
      throw new ShapeError(
        'embeddingBackward dy',
        `[${[...ids.shape, 'E'].join(', ')}]`,
        dy.shape,
        `ids are ${formatShape(ids.shape)}`,
      );
    }
    if (!Number.isInteger(vocabSize) || vocabSize < 1)
      throw new ArgumentError('embeddingBackward vocabSize', 'a positive integer', vocabSize);
    const out = { shape: [vocabSize, dy.shape[dy.rank - 1]], dtype: dy.dtype };
    return wrapOutput(backend, impl(ids, dy, { vocabSize }, out), out);
  });
}
