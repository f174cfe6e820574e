/** Small models and texts the tests train on, and a way to read a tensor map back. */
import { DiffTransformer, type ModelConfigInput } from '@diff-transformer/core';
import { splitDocuments, tokenizeSplit, type TextDocument, type TokenizedData } from '@diff-transformer/train';

/** A DiffLlama-exportable DIFF model small enough for many steps in a test. */
export const MICRO: ModelConfigInput = {
  vocabSize: 256,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 2,
  maxPositions: 64,
  rope: { layout: 'half', precision: 'float32' },
  subLayerNorm: { affine: false },
};

export function microModel(seed = 1, overrides: Partial<ModelConfigInput> = {}): DiffTransformer {
  return DiffTransformer.create({ ...MICRO, ...overrides }, { seed });
}

/** Twelve short English documents (so the split takes every tenth as validation). */
export function smallDocuments(): TextDocument[] {
  const sentences = [
    'The jury said the election was conducted well.',
    'A quick brown fox jumps over the lazy dog near the river bank.',
    'She read the letter twice before she put it back in the drawer.',
    'In the morning the town woke to the sound of the bells.',
    'They walked along the road until the lights of the city appeared.',
    'The committee will meet again on Friday to discuss the budget.',
  ];
  return Array.from({ length: 12 }, (_, i) => ({
    name: `doc${String(i).padStart(2, '0')}.txt`,
    text: Array.from({ length: 30 }, (_, j) => sentences[(i + j) % sentences.length]).join('\n'),
  }));
}

export function smallData(): TokenizedData {
  return tokenizeSplit(splitDocuments(smallDocuments()));
}

export async function hostParameters(model: DiffTransformer): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of await model.hostParameters()) out.set(name, p.data);
  return out;
}
