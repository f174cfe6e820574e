/**
 * The tape of reverse-mode differentiation (tfjs's engine tape; PyTorch's saved-for-backward).
 *
 * A tape exists only inside `valueAndGrads`. While it is active, every op whose inputs depend on a
 * watched tensor records one node through ops/run.ts: its inputs, its output, its attributes, and the
 * tensors its row of the gradient table saves. A node's saved tensors are freed as soon as its rule has
 * run (or at once, when no gradient reaches it), as PyTorch frees a node's saved tensors after its
 * backward.
 *
 * Outside `valueAndGrads` nothing is recorded: `recordingTape` is one array-length check, and no
 * tensor is saved. Inference pays nothing.
 */
import { GradientError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { GradientTable } from './gradient-table.js';

export interface TapeNode {
  /** The op, for messages. */
  readonly op: string;
  /** The op's tensor inputs (null for an absent optional one), named by `names` (its row's inputs). */
  readonly inputs: ReadonlyArray<Tensor | null>;
  readonly names: readonly string[];
  readonly output: Tensor;
  /** The saved tensors by name: handles of their own, freed by `release`. */
  readonly saved: Map<string, Tensor | null>;
  /** The op's rule on its saved tensors and attributes: dy ↦ the gradient of each input, by name. */
  readonly backward: (dy: Tensor, isOnes: (t: Tensor) => boolean) => Readonly<Record<string, Tensor | null>>;
}

export class Tape {
  readonly nodes: TapeNode[] = [];
  /** Watched tensors and every output of a recorded node: the tensors that have a gradient. */
  readonly #differentiable = new Set<Tensor>();

  /** @param gradients the rows the ops record with (GRADIENTS unless a caller gave its own). */
  constructor(readonly gradients: GradientTable) {}

  watch(t: Tensor): void {
    this.#differentiable.add(t);
  }

  requiresGrad(t: Tensor | null | undefined): boolean {
    return t != null && this.#differentiable.has(t);
  }

  /** Records an op; its output has a gradient from now on. */
  record(node: TapeNode): void {
    this.#differentiable.add(node.output);
    this.nodes.push(node);
  }

  /** Frees what a node saved: after its rule has run, or when no gradient reached it. */
  release(node: TapeNode): void {
    for (const t of node.saved.values()) t?.dispose();
    node.saved.clear();
  }

  dispose(): void {
    for (const node of this.nodes) this.release(node);
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

/** Runs fn with `tape` recording; the rules run after it returns, with no tape active. */
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
