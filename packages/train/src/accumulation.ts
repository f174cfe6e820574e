/**
 * Gradient accumulation: the gradients of several micro-batches added up on the device, so that a
 * step sees a batch larger than fits at once. The sum is scaled back to a mean by the optimiser's
 * gradScale (1/micro-batches), fused into the update: no extra pass over the gradients.
 */
import { keep, ops, type Tensor } from '@diff-transformer/core';

export class GradientAccumulator {
  #sums: Map<string, Tensor> | null = null;
  #count = 0;

  /** Micro-batches added since the last take(). */
  get count(): number {
    return this.#count;
  }

  /** Adds one micro-batch's gradients; takes ownership of them (they are freed or kept as the sum). */
  add(grads: Map<string, Tensor>): void {
    if (this.#sums === null) {
      for (const g of grads.values()) keep(g);
      this.#sums = grads;
    } else {
      const sums = this.#sums;
      for (const [name, g] of grads) {
        const before = sums.get(name);
        if (!before) {
          sums.set(name, keep(g));
          continue;
        }
        sums.set(name, keep(ops.add(before, g)));
        before.dispose();
        g.dispose();
      }
    }
    this.#count++;
  }

  /** The summed gradients (the caller owns them) and how many micro-batches they hold; resets. */
  take(): { grads: Map<string, Tensor>; count: number } {
    const grads = this.#sums ?? new Map<string, Tensor>();
    const count = this.#count;
    this.#sums = null;
    this.#count = 0;
    return { grads, count };
  }

  dispose(): void {
    for (const g of this.#sums?.values() ?? []) g.dispose();
    this.#sums = null;
    this.#count = 0;
  }
}
