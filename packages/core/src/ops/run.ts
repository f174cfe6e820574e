/**
 * The one path every op of ops/ runs through (tfjs's engine.runKernel): it is the only way an op reaches
 * a kernel, and on a recording tape it saves what the op's row of the gradient table names and records
 * the node. An op with no rule runs through `runWithoutGradient`, which refuses an input that requires a
 * gradient: no op can cut a gradient silently, because no op can reach a kernel any other way.
 */
import type {
  DifferentiableOp,
  DifferentiableOps,
  GradientRules,
  NonDifferentiableOp,
} from '../autograd/gradient-table.js';
import { type Tape, recordingTape } from '../autograd/tape.js';
import type { Backend, KernelName, Kernels } from '../backend/kernels.js';
import { GradientError } from '../errors.js';
import { keep } from '../tensor/scope.js';
import { type Tensor, storageView } from '../tensor/tensor.js';
import { kernelFor } from './dispatch.js';

/** What an op's forward gets from the run path. */
export interface ForwardCall {
  /** The kernel for these tensors' backend (default: the op's inputs), checked as kernelFor checks it. */
  kernel<K extends KernelName>(
    name: K,
    tensors?: ReadonlyArray<Tensor | null | undefined>,
  ): { backend: Backend; impl: Kernels[K] };
  /** True on a recording tape: the forward must then also return the statistics its rule saves. */
  readonly recording: boolean;
}

/** A differentiable op's forward: its output, and on a recording tape the statistics its rule reads. */
export interface ForwardResult {
  readonly y: Tensor;
  /** Freed after the rule's saves are taken: the op returns y alone. */
  readonly statistics?: Readonly<Record<string, Tensor | null>>;
}

/** Runs an op that has a gradient rule and records it when an input requires a gradient. */
export function runOp<K extends DifferentiableOp>(
  op: K,
  inputs: ReadonlyArray<Tensor | null>,
  attrs: DifferentiableOps[K],
  forward: (call: ForwardCall) => ForwardResult,
): Tensor {
  const tape = recordingTape(inputs);
  if (tape) refuseConstants(tape, op, inputs);
  const { y, statistics = {} } = forward({
    kernel: (name, tensors = inputs) => kernelFor(name, tensors),
    recording: tape !== null,
  });
  try {
    if (tape) record(tape, op, inputs, y, attrs, statistics);
  } catch (error) {
    y.dispose();
    throw error;
  } finally {
    for (const t of Object.values(statistics)) t?.dispose();
  }
  return y;
}

/** Runs an op without a gradient rule; on a recording tape, an input that requires a gradient is refused. */
export function runWithoutGradient<R>(
  op: NonDifferentiableOp,
  inputs: ReadonlyArray<Tensor | null | undefined>,
  forward: (call: ForwardCall) => R,
): R {
  const tape = recordingTape(inputs);
  if (tape) {
    throw new GradientError(op, `has no gradient (${tape.gradients[op].noGradient}); compute it outside valueAndGrads`);
  }
  return forward({ kernel: (name, tensors = inputs) => kernelFor(name, tensors), recording: false });
}

function refuseConstants(tape: Tape, op: DifferentiableOp, inputs: ReadonlyArray<Tensor | null>): void {
  const rule = tape.gradients[op];
  if (inputs.length !== rule.inputs.length) {
    throw new GradientError(op, `its row names ${rule.inputs.length} inputs, the op passed ${inputs.length}`);
  }
  for (const name of rule.constant) {
    if (tape.requiresGrad(inputs[rule.inputs.indexOf(name)])) {
      throw new GradientError(op, `its input '${name}' has no gradient (a constant of the op); do not watch it`);
    }
  }
}

function record<K extends DifferentiableOp>(
  tape: Tape,
  op: K,
  inputs: ReadonlyArray<Tensor | null>,
  y: Tensor,
  attrs: DifferentiableOps[K],
  statistics: Readonly<Record<string, Tensor | null>>,
): void {
  const rules: GradientRules = tape.gradients;
  const rule = rules[op];
  const find = (name: string): Tensor | null => {
    const i = rule.inputs.indexOf(name);
    if (i >= 0) return inputs[i];
    if (name === 'y') return y;
    if (name in statistics) return statistics[name];
    throw new GradientError(
      op,
      `its rule saves '${name}', which is neither an input, y, nor a statistic of its forward`,
    );
  };
  const saved = new Map<string, Tensor | null>();
  try {
    for (const name of rule.save) {
      const t = find(name);
      // A handle of the tape's own, outside every scope: the forward's tidy may free the original.
      saved.set(name, t && keep(storageView(t)));
    }
  } catch (error) {
    for (const t of saved.values()) t?.dispose();
    throw error;
  }
  const shapes = Object.fromEntries(rule.inputs.map((name, i) => [name, inputs[i]?.shape ?? []]));
  tape.record({
    op,
    inputs,
    names: rule.inputs,
    output: y,
    saved,
    backward: (dy, isOnes) => rule.backward(dy, Object.fromEntries(saved), attrs, { shapes, isOnes }),
  });
}
