/**
 * The tape of reverse-mode differentiation (tfjs's engine tape; PyTorch's saved-for-backward).
 *
 * A tape exists only inside `valueAndGrads`. While it is active, an op whose inputs depend on a watched
 * tensor records one node: its inputs, its outputs, and its gradient rule, a closure (written beside
 * the op in ops/) that turns the gradients of the outputs into gradients of the inputs by calling
 * kernels. Tensors a rule needs later are kept alive by `save`, whatever scope made them.
 *
 * Outside `valueAndGrads` nothing is recorded: `recordingTape` is one array-length check, and no
 * closure is made, no tensor saved. Inference pays nothing.
 */
import { DiffTransformerError } from '../errors.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

/** Maps the gradients of an op's outputs (null: the output did not reach the value) to its inputs'. */
export type GradientRule = (dOutputs: ReadonlyArray<Tensor | null>) => ReadonlyArray<Tensor | null>;

export interface TapeNode {
  /** The op, for messages. */
  readonly op: string;
  /** The op's tensor inputs in the order the rule returns their gradients (null for absent ones). */
  readonly inputs: ReadonlyArray<Tensor | null>;
  readonly outputs: readonly Tensor[];
  readonly rule: GradientRule;
}

export class Tape {
  readonly nodes: TapeNode[] = [];
  /** Watched tensors and every output of a recorded node: the tensors that have a gradient. */
  readonly #differentiable = new Set<Tensor>();
  /** Views held for the rules; freed when the tape is disposed. */
  readonly #saved = new Set<Tensor>();
  /** Gradients of the value's seed (all ones); a rule may recognise one to skip a multiplication. */
  readonly seeds = new Set<Tensor>();

  watch(t: Tensor): void {
    this.#differentiable.add(t);
  }

  requiresGrad(t: Tensor | null | undefined): boolean {
    return t != null && this.#differentiable.has(t);
  }

  /** Another handle on t's storage that lives until the tape is disposed (the rule's saved tensor). */
  save(t: Tensor): Tensor {
    const view = keep(t.share());
    this.#saved.add(view);
    return view;
  }

  isSaved(t: Tensor): boolean {
    return this.#saved.has(t);
  }

  /** Records an op; its outputs have gradients from now on. */
  record(op: string, inputs: ReadonlyArray<Tensor | null>, outputs: readonly Tensor[], rule: GradientRule): void {
    for (const o of outputs) this.#differentiable.add(o);
    this.nodes.push({ op, inputs, outputs, rule });
  }

  dispose(): void {
    for (const t of this.#saved) t.dispose();
    this.#saved.clear();
    this.nodes.length = 0;
    this.#differentiable.clear();
  }
}

const TAPES_KEY = Symbol.for('@diff-transformer/core/tapes');
// Shared through globalThis like the scopes, so an ESM and a CJS copy of core record on the same tape.
const globalStore = globalThis as unknown as Record<symbol, Tape[] | undefined>;
// biome-ignore lint/suspicious/noAssignInExpressions: one shared stack per process, made by the first copy of core
const tapes: Tape[] = (globalStore[TAPES_KEY] ??= []);

/** The active tape, if an op with these inputs must be recorded on it; null otherwise (and always outside valueAndGrads). */
export function recordingTape(inputs: ReadonlyArray<Tensor | null | undefined>): Tape | null {
  if (tapes.length === 0) return null;
  const tape = tapes[tapes.length - 1];
  for (const t of inputs) if (tape.requiresGrad(t)) return tape;
  return null;
}

/** Runs fn with `tape` recording. */
export function withTape<T>(tape: Tape, fn: () => T): T {
  if (tapes.length > 0) {
    throw new GradientError('valueAndGrads', 'cannot be nested: call it once, around the whole computation');
  }
  tapes.push(tape);
  try {
    return fn();
  } finally {
    tapes.pop();
  }
}

/** Backpropagation runs with no tape active, so the kernels of the rules record nothing. */
export function isRecording(): boolean {
  return tapes.length > 0;
}

/** A gradient that cannot be computed: an op without a rule, an in-place write on the tape, a nested tape. */
export class GradientError extends DiffTransformerError {
  constructor(op: string, reason: string) {
    super('GRADIENT', `${op}: ${reason}`);
  }
}

/** For ops without a gradient rule: refuse to run on a recorded input rather than cut the gradient silently. */
export function refuseOnTape(op: string, inputs: ReadonlyArray<Tensor | null | undefined>, why: string): void {
  if (recordingTape(inputs)) throw new GradientError(op, `has no gradient (${why}); compute it outside valueAndGrads`);
}
