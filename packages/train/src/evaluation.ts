/**
 * Evaluation: the mean next-token cross-entropy of a model over packed sequences, and what it means in
 * the usual units: bits per token, bits per byte (comparable across tokenizers: a byte model's bits per
 * token), and perplexity. Forward only: no tape, no gradients kept.
 */
import type { DiffTransformer } from '@diff-transformer/core';
import { evenlySpaced, type SequenceSource } from './data/sequences.js';

export interface Evaluation {
  /** Mean cross-entropy per predicted token, in nats. */
  readonly loss: number;
  readonly bitsPerToken: number;
  /** bitsPerToken × tokens per UTF-8 byte of the split's text. */
  readonly bitsPerByte: number;
  /** e^loss. */
  readonly perplexity: number;
  /** Predicted tokens the figures average over. */
  readonly tokens: number;
  readonly sequences: number;
}

export interface EvaluateOptions {
  /** Sequences per forward pass; default 8. */
  readonly batchSize?: number;
  /** At most this many tokens, from sequences spread evenly over the split (default: every sequence). */
  readonly maxTokens?: number;
  /** Tokens per UTF-8 byte of the split's text (1 for the byte tokenizer). */
  readonly tokensPerByte: number;
}

export async function evaluate(
  model: DiffTransformer,
  sequences: SequenceSource,
  options: EvaluateOptions,
): Promise<Evaluation> {
  const batchSize = options.batchSize ?? 8;
  const wanted =
    options.maxTokens === undefined ? sequences.count : Math.max(1, Math.floor(options.maxTokens / sequences.seqLen));
  const indices = evenlySpaced(sequences.count, wanted);
  let nats = 0;
  let tokens = 0;
  for (let start = 0; start < indices.length; start += batchSize) {
    const { ids, targets } = sequences.batch(indices.slice(start, start + batchSize));
    const loss = model.loss(ids, targets);
    try {
      // The loss is a mean over the targets that count (all of them in packed text).
      let count = 0;
      for (const row of targets) for (const target of row) if (target !== -100) count++;
      nats += (await loss.data())[0] * count;
      tokens += count;
    } finally {
      loss.dispose();
    }
  }
  return figures(nats / tokens, tokens, indices.length, options.tokensPerByte);
}

/** The figures of a mean loss in nats per token. */
export function figures(loss: number, tokens: number, sequences: number, tokensPerByte: number): Evaluation {
  const bitsPerToken = loss / Math.LN2;
  return {
    loss,
    bitsPerToken,
    bitsPerByte: bitsPerToken * tokensPerByte,
    perplexity: Math.exp(loss),
    tokens,
    sequences,
  };
}
