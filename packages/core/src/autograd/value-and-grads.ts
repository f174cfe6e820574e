/**
 * valueAndGrads: the value of a function of tensors and its gradient with respect to chosen tensors
 * (tfjs's variableGrads, PyTorch's autograd.grad). The function runs once, recording on a tape; then
 * the recorded nodes' rules (the gradient table's) run in reverse order, each turning the gradient of an
 * op's output into those of its inputs, and gradients of a tensor used several times (tied embeddings,
 * residuals) add up. Each node's saved tensors are freed as soon as its rule has run.
 */
import { ArgumentError, GradientError, ShapeError } from '../errors.js';
import { add } from '../ops/elementwise.js';
import { tensor, zeros } from '../tensor/create.js';
import { isFloatDType } from '../tensor/dtype.js';
import { tidy } from '../tensor/scope.js';
import { shapesEqual } from '../tensor/shape.js';
import { type Tensor, storageView } from '../tensor/tensor.js';
import type { GradientTable } from './gradient-table.js';
import { GRADIENTS } from './gradients.js';
import { Tape, type TapeNode, withTape } from './tape.js';

export interface ValueAndGrads<K> {
  /** What fn returned (the caller owns it). */
  readonly value: Tensor;
  /**
   * d(Σ dValue ⊙ value)/d(tensor) (dValue all ones unless given), for every watched tensor, under its
   * key, in its shape and dtype (zeros where the value does not depend on it). The caller owns them.
   */
  readonly grads: Map<K, Tensor>;
}

export interface ValueAndGradsOptions {
  /**
   * The gradient of the value to start from (tfjs's dy, PyTorch's grad_outputs): the value's shape and
   * dtype, on its backend. Default all ones, i.e. the gradient of the sum of the value's elements.
   */
  readonly dValue?: Tensor;
  /**
   * The gradient table the tape applies; default GRADIENTS. A test passes a copy with one rule broken
   * to prove that a check catches it.
   */
  readonly gradients?: GradientTable;
}

/**
 * Runs fn, which must be synchronous and return a float tensor (usually a loss of shape [1]), and
 * differentiates the sum of its elements (weighted by dValue, if given) with respect to each tensor of
 * `watched`. Intermediates are freed; nothing is read back to the host.
 */
export function valueAndGrads<K>(
  fn: () => Tensor,
  watched: ReadonlyMap<K, Tensor>,
  options: ValueAndGradsOptions = {},
): ValueAndGrads<K> {
  const tape = new Tape(options.gradients ?? GRADIENTS);
  for (const t of watched.values()) tape.watch(t);
  try {
    const value = withTape(tape, () => tidy(fn));
    if (value === null || typeof value !== 'object' || !('shape' in value)) {
      throw new ArgumentError('valueAndGrads(fn)', 'a function returning a tensor', typeof value);
    }
    try {
      if (!isFloatDType(value.dtype)) throw new ArgumentError('valueAndGrads value', 'a float tensor', value.dtype);
      return { value, grads: backpropagate(tape, value, watched, options.dValue) };
    } catch (error) {
      value.dispose();
      throw error;
    }
  } finally {
    tape.dispose();
  }
}

/** Runs the rules in reverse order of recording, from the value's seed to the watched tensors. */
function backpropagate<K>(
  tape: Tape,
  value: Tensor,
  watched: ReadonlyMap<K, Tensor>,
  dValue: Tensor | undefined,
): Map<K, Tensor> {
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
    const seed = dValue ? checkedSeed(value, dValue) : ones(value);
    const isOnes = (t: Tensor) => !dValue && t === seed;
    pending.set(value, seed);
    for (let i = tape.nodes.length - 1; i >= 0; i--) {
      const node = tape.nodes[i];
      const dy = pending.get(node.output);
      pending.delete(node.output);
      try {
        if (dy) for (const [input, gradient] of applyRule(tape, node, dy, isOnes)) accumulate(input, gradient);
      } finally {
        tape.release(node);
        dy?.dispose();
      }
    }
    const given = new Map<Tensor, Tensor>();
    for (const [key, t] of watched) {
      const first = given.get(t);
      if (first) {
        grads.set(key, storageView(first));
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

/**
 * One node's rule: the gradient of each input that requires one, each a handle of its own. A rule may
 * hand back dy itself (add), one tensor for two inputs, or a tensor it saved (crossEntropy's dLogits):
 * those get views, since dy and the saved tensors are freed when the rule is done.
 */
function applyRule(tape: Tape, node: TapeNode, dy: Tensor, isOnes: (t: Tensor) => boolean): Array<[Tensor, Tensor]> {
  const returned = tidy(() => node.backward(dy, isOnes));
  const borrowed = new Set<Tensor>([dy, ...[...node.saved.values()].filter((t): t is Tensor => t !== null)]);
  const fresh = new Set<Tensor>(Object.values(returned).filter((t): t is Tensor => t != null && !borrowed.has(t)));
  const out: Array<[Tensor, Tensor]> = [];
  try {
    node.inputs.forEach((input, j) => {
      if (!input || !tape.requiresGrad(input)) return;
      const name = node.names[j];
      const gradient = returned[name];
      if (!gradient) throw new GradientError(node.op, `its rule gave no gradient for its input '${name}'`);
      if (!shapesEqual(gradient.shape, input.shape) || gradient.dtype !== input.dtype) {
        throw new GradientError(
          node.op,
          `its rule gave a ${gradient.dtype} gradient of shape [${gradient.shape}] for its input '${name}', ` +
            `a ${input.dtype} tensor of shape [${input.shape}]`,
        );
      }
      // The first use of a fresh tensor takes it; every other use gets a view.
      out.push([input, fresh.delete(gradient) ? gradient : storageView(gradient)]);
    });
  } catch (error) {
    for (const [, g] of out) g.dispose();
    throw error;
  } finally {
    for (const t of fresh) t.dispose();
  }
  return out;
}

function ones(value: Tensor): Tensor {
  return tensor(new Float32Array(value.size).fill(1), value.shape, { backend: value.backend, dtype: value.dtype });
}

/** A view of the caller's dValue (the caller keeps its own handle), once its shape and dtype are checked. */
function checkedSeed(value: Tensor, dValue: Tensor): Tensor {
  if (!shapesEqual(dValue.shape, value.shape))
    throw new ShapeError('valueAndGrads dValue', `[${value.shape}]`, dValue.shape);
  if (dValue.dtype !== value.dtype)
    throw new ArgumentError('valueAndGrads dValue', `a ${value.dtype} tensor`, dValue.dtype);
  return storageView(dValue);
}
