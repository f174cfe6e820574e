/**
 * valueAndGrads: the value of a function of tensors and its gradient with respect to chosen tensors
 * (tfjs's variableGrads, PyTorch's autograd.grad). The function runs once, recording on a tape; then
 * the recorded gradient rules run in reverse order, each turning the gradients of an op's outputs into
 * those of its inputs, and gradients of a tensor used several times (tied embeddings, residuals) add up.
 */
import { ArgumentError } from '../errors.js';
import { add } from '../ops/elementwise.js';
import { tensor, zeros } from '../tensor/create.js';
import { isFloatDType } from '../tensor/dtype.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { GradientError, Tape, withTape } from './tape.js';

export interface ValueAndGrads<K> {
  /** What fn returned (the caller owns it). */
  readonly value: Tensor;
  /**
   * d(sum of value's elements)/d(tensor), for every watched tensor, under its key, in its shape and
   * dtype (zeros where the value does not depend on it). The caller owns them.
   */
  readonly grads: Map<K, Tensor>;
}

/**
 * Runs fn, which must be synchronous and return a float tensor (usually a loss of shape [1]), and
 * differentiates the sum of its elements with respect to each tensor of `watched`. Intermediates are
 * freed; nothing is read back to the host.
 */
export function valueAndGrads<K>(fn: () => Tensor, watched: ReadonlyMap<K, Tensor>): ValueAndGrads<K> {
  const tape = new Tape();
  for (const t of watched.values()) tape.watch(t);
  try {
    const value = withTape(tape, () => tidy(fn));
    if (value === null || typeof value !== 'object' || !('shape' in value)) {
      throw new ArgumentError('valueAndGrads(fn)', 'a function returning a tensor', typeof value);
    }
    if (!isFloatDType(value.dtype)) throw new ArgumentError('valueAndGrads value', 'a float tensor', value.dtype);
    try {
      return { value, grads: backpropagate(tape, value, watched) };
    } catch (error) {
      value.dispose();
      throw error;
    }
  } finally {
    tape.dispose();
  }
}

/** Runs the rules in reverse order of recording, from the value's seed of ones to the watched tensors. */
function backpropagate<K>(tape: Tape, value: Tensor, watched: ReadonlyMap<K, Tensor>): Map<K, Tensor> {
  // The gradient accumulated so far for each tensor that carries one; each entry is a handle we own.
  const pending = new Map<Tensor, Tensor>();
  const accumulate = (target: Tensor, gradient: Tensor): void => {
    const before = pending.get(target);
    if (!before) {
      pending.set(target, gradient);
      return;
    }
    pending.set(
      target,
      tidy(() => add(before, gradient)),
    );
    before.dispose();
    gradient.dispose();
  };
  const grads = new Map<K, Tensor>();
  try {
    const seed = tensor(new Float32Array(value.size).fill(1), value.shape, {
      backend: value.backend,
      dtype: value.dtype,
    });
    tape.seeds.add(seed);
    pending.set(value, seed);
    for (let i = tape.nodes.length - 1; i >= 0; i--) {
      const node = tape.nodes[i];
      const dOutputs = node.outputs.map((o) => pending.get(o) ?? null);
      if (dOutputs.every((d) => d === null)) continue;
      for (const o of node.outputs) pending.delete(o);
      try {
        const dInputs = tidy(() => node.rule(dOutputs));
        if (dInputs.length !== node.inputs.length) {
          throw new GradientError(
            node.op,
            `its rule gave ${dInputs.length} gradients for ${node.inputs.length} inputs`,
          );
        }
        // A rule may hand back a gradient it was given (add, reshape), one tensor for two inputs (add) or
        // a saved tensor (crossEntropy's dLogits): each place that keeps one gets a handle of its own.
        const handedOut = new Set<Tensor>(dOutputs.filter((d): d is Tensor => d !== null));
        node.inputs.forEach((input, j) => {
          const d = dInputs[j];
          if (!d) return;
          const own = handedOut.has(d) || tape.isSaved(d) ? d.share() : d;
          handedOut.add(d);
          if (input && tape.requiresGrad(input)) {
            checkGradient(node.op, input, own);
            accumulate(input, own);
          } else {
            own.dispose();
          }
        });
      } finally {
        for (const d of dOutputs) d?.dispose();
      }
    }
    const given = new Map<Tensor, Tensor>();
    for (const [key, t] of watched) {
      const first = given.get(t);
      if (first) {
        grads.set(key, first.share());
        continue;
      }
      const g = pending.get(t) ?? zeros(t.shape, { backend: t.backend, dtype: t.dtype });
      pending.delete(t);
      given.set(t, g);
      grads.set(key, g);
    }
    return grads;
  } catch (error) {
    for (const g of grads.values()) g.dispose();
    throw error;
  } finally {
    for (const g of pending.values()) g.dispose();
  }
}

function checkGradient(op: string, input: Tensor, gradient: Tensor): void {
  if (gradient.size !== input.size || gradient.dtype !== input.dtype) {
    throw new GradientError(
      op,
      `its rule gave a gradient of ${gradient.size} ${gradient.dtype} values for an input of ${input.size} ${input.dtype}`,
    );
  }
}
