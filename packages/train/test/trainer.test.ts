import { loadModelFromFolder, memory, memoryFolder, setBackend } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import {
  checkpointFiles,
  DataError,
  type FolderFile,
  readTrainingState,
  splitDocuments,
  tokenizeSplit,
  Trainer,
  TrainingConfigError,
} from '@diff-transformer/train';
import { brownDocuments } from '@diff-transformer/train/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostParameters, microModel, smallData } from './helpers.js';

beforeAll(async () => {
  await setBackend('cpu');
});

const options = { steps: 40, batchSize: 4, seqLen: 32, learningRate: 1e-2, warmupSteps: 4, evalTokens: 1024 };

function bytesOf(files: FolderFile[]): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const file of files) {
    const parts = file.chunks.map((c) => (typeof c === 'function' ? c() : c));
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const p of parts) {
      joined.set(p, offset);
      offset += p.length;
    }
    out.set(file.name, joined);
  }
  return out;
}

describe('Trainer', () => {
  it('the validation loss falls on a small slice of the Brown corpus', async () => {
    const documents = (await brownDocuments()).slice(0, 40);
    const data = tokenizeSplit(splitDocuments(documents));
    const model = microModel(3);
    const trainer = new Trainer(model, data, { ...options, steps: 60, batchSize: 8, evalTokens: 4096 });
    try {
      const before = await trainer.evaluate();
      const reports: number[] = [];
      await trainer.train({ onStep: (r) => void reports.push(r.bitsPerByte) });
      const after = trainer.lastEvaluation!;
      console.log(
        `Brown slice: validation ${before.bitsPerByte.toFixed(3)} → ${after.bitsPerByte.toFixed(3)} bits/byte ` +
          `after ${trainer.step} steps (${trainer.tokens} tokens)`,
      );
      expect(after.step).toBe(60);
      expect(before.bitsPerByte).toBeGreaterThan(7.5);
      expect(after.bitsPerByte).toBeLessThan(before.bitsPerByte - 3);
      expect(reports.slice(-5).reduce((a, b) => a + b) / 5).toBeLessThan(reports[0] - 3);
      expect(after.perplexity).toBeCloseTo(Math.exp(after.loss), 10);
      expect(after.bitsPerByte).toBeCloseTo(after.loss / Math.LN2, 10);
    } finally {
      trainer.dispose();
      model.dispose();
    }
  });

  it('two micro-batches of 2 make the step one batch of 4 makes', async () => {
    const data = smallData();
    const run = async (batchSize: number, gradientAccumulation: number) => {
      const model = microModel(5);
      const trainer = new Trainer(model, data, { ...options, batchSize, gradientAccumulation });
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await trainer.trainStep()).loss);
      const parameters = await hostParameters(model);
      trainer.dispose();
      model.dispose();
      return { losses, parameters };
    };
    const one = await run(4, 1);
    const two = await run(2, 2);
    for (let i = 0; i < 3; i++) expect(two.losses[i]).toBeCloseTo(one.losses[i], 4);
    for (const [name, p] of one.parameters) {
      const q = two.parameters.get(name)!;
      let diff = 0;
      for (let i = 0; i < p.length; i++) diff = Math.max(diff, Math.abs(p[i] - q[i]));
      expect(diff, name).toBeLessThan(1e-4);
    }
  });

  it('a checkpoint taken at step 5 continues bit for bit as the run that was not stopped', async () => {
    const data = smallData();
    const straight = microModel(7);
    const a = new Trainer(straight, data, { ...options, steps: 10, evalEvery: 5 });
    const lossesA: number[] = [];
    await a.train({ onStep: (r) => void lossesA.push(r.loss) });

    const first = microModel(7);
    const b = new Trainer(first, data, { ...options, steps: 10, evalEvery: 5 });
    const lossesB: number[] = [];
    await b.train({ onStep: (r) => void lossesB.push(r.loss) }, 5);
    const folder = memoryFolder(bytesOf(await checkpointFiles(b)), 'checkpoint');
    b.dispose();
    first.dispose();

    const { state, moments } = await readTrainingState(folder);
    expect(state.step).toBe(5);
    const resumedModel = await loadModelFromFolder(folder);
    const c = new Trainer(resumedModel, data, state.options);
    c.restore(state, moments);
    await c.train({ onStep: (r) => void lossesB.push(r.loss) });

    expect(lossesB).toEqual(lossesA);
    const [pa, pc] = [await hostParameters(straight), await hostParameters(resumedModel)];
    for (const [name, p] of pa) expect(Array.from(pc.get(name)!), name).toEqual(Array.from(p));
    const [ma, mc] = [await a.optimizer.hostState(), await c.optimizer.hostState()];
    expect(mc.step).toBe(ma.step);
    for (const [name, m] of ma.moments) expect(Array.from(mc.moments.get(name)!.v), name).toEqual(Array.from(m.v));
    expect(c.lastEvaluation).toEqual(a.lastEvaluation);
    for (const t of [a, c]) t.dispose();
    straight.dispose();
    resumedModel.dispose();
  });

  it('trains on sequence sources (a synthetic task): only the targets that count are learned, evaluated', async () => {
    // Recall: 8 random tokens, then the first one again; only the last position has a target.
    const recall = (salt: number, count: number) => ({
      count,
      seqLen: 32,
      batch(indices: readonly number[]) {
        const ids: number[][] = [];
        const targets: number[][] = [];
        for (const i of indices) {
          const row = Array.from({ length: 32 }, (_, t) => (((i * 7919 + salt) * (t + 3)) % 50) + 10);
          ids.push(row);
          targets.push(row.map((_, t) => (t === 31 ? row[0] : -100)));
        }
        return { ids, targets };
      },
    });
    const data = { train: recall(1, 400), validation: recall(2, 16), vocabSize: 64, fingerprint: 'recall-test' };
    const model = microModel(3);
    const trainer = new Trainer(model, data, { ...options, steps: 3 });
    try {
      await trainer.train();
      const evaluation = await trainer.evaluate(0);
      // 16 sequences, one counted target each; bits per byte are bits per token without text.
      expect(evaluation.tokens).toBe(16);
      expect(evaluation.bitsPerByte).toBe(evaluation.bitsPerToken);
      expect(trainer.state().data).toMatchObject({ fingerprint: 'recall-test', trainTokens: 400 * 32 });
      expect(() => new Trainer(model, data, { ...options, seqLen: 16 })).toThrow(
        /seqLen: expected the training sequences' length \(32\), got 16/,
      );
    } finally {
      trainer.dispose();
      model.dispose();
    }
  });

  it('refuses with typed errors what it cannot train, before allocating anything', () => {
    const data = smallData();
    const model = microModel();
    const before = memory('cpu').liveStorages;
    try {
      expect(() => new Trainer(model, data, { ...options, seqLen: 65 })).toThrow(TrainingConfigError);
      expect(() => new Trainer(model, data, { ...options, seqLen: 65 })).toThrow(
        /seqLen: expected at most the model's maxPositions \(64\), got 65/,
      );
      const noSteps = () => new Trainer(model, data, { ...options, steps: 0 });
      expect(noSteps).toThrow(/steps: expected an integer ≥ 1, got 0/);
      expect(() => new Trainer(model, data, { ...options, steps: -3 })).toThrow(TrainingConfigError);
      expect(() => new Trainer(model, data, { ...options, batchSize: 1.5 })).toThrow(/batchSize/);
      const tiny = tokenizeSplit(splitDocuments([{ name: 'short.txt', text: 'just a few words\nof text here' }]));
      expect(() => new Trainer(model, tiny, options)).toThrow(DataError);
      expect(() => new Trainer(model, tiny, options)).toThrow(/too few for one sequence of 32/);
      const small = microModel(1, { vocabSize: 100 });
      try {
        expect(() => new Trainer(small, data, options)).toThrow(/vocabSize/);
      } finally {
        small.dispose();
      }
      expect(memory('cpu').liveStorages).toBe(before);
    } finally {
      model.dispose();
    }
  });

  it('frees every storage it made: moments, gradients, intermediates', async () => {
    const before = memory('cpu').liveStorages;
    const model = microModel();
    const trainer = new Trainer(model, smallData(), { ...options, steps: 3, gradientAccumulation: 2, evalEvery: 1 });
    await trainer.train();
    trainer.dispose();
    model.dispose();
    expect(memory('cpu').liveStorages).toBe(before);
  });
});
