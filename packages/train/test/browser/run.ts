/**
 * The run the browser test makes in the page and in Node alike: a micro DIFF model, seed 1, a few
 * steps on fixed text. Only the built packages are used, as an app uses them.
 */
import { type Backend, DiffTransformer } from '@diff-transformer/core';
import { splitDocuments, Trainer, tokenizeSplit } from '@diff-transformer/train';

export const STEPS = 8;

export interface PageRun {
  readonly device: string;
  readonly losses: number[];
  readonly validation: number;
}

export async function trainLosses(backend: Backend): Promise<PageRun> {
  const sentences = [
    'The jury said the election was conducted well.',
    'A quick brown fox jumps over the lazy dog near the river bank.',
    'She read the letter twice before she put it back in the drawer.',
  ];
  const documents = Array.from({ length: 10 }, (_, i) => ({
    name: `doc${i}`,
    text: Array.from({ length: 20 }, (_, j) => sentences[(i + j) % 3]).join('\n'),
  }));
  const data = tokenizeSplit(splitDocuments(documents));
  const model = DiffTransformer.create(
    {
      vocabSize: 256,
      hiddenSize: 32,
      numLayers: 2,
      numHeads: 2,
      maxPositions: 64,
      rope: { layout: 'half', precision: 'float32' },
      subLayerNorm: { affine: false },
    },
    { seed: 1, backend },
  );
  const trainer = new Trainer(model, data, {
    steps: STEPS,
    batchSize: 4,
    seqLen: 32,
    learningRate: 1e-2,
    warmupSteps: 2,
    evalTokens: 512,
  });
  try {
    const losses: number[] = [];
    await trainer.train({ onStep: (r) => void losses.push(r.loss) });
    return { device: backend.device, losses, validation: trainer.lastEvaluation!.loss };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}
