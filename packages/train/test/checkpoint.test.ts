import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackend } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { ResumeError, Trainer } from '@diff-transformer/train';
import { loadCheckpoint, saveCheckpoint, TrainLog } from '@diff-transformer/train/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { microModel, smallData } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-checkpoint-'));
beforeAll(async () => {
  await setBackend('cpu');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('checkpoints on disk', () => {
  it('save and load: the model, the optimiser and the state come back; the log stays', async () => {
    const dir = join(scratch, 'run');
    const model = microModel(2);
    const trainer = new Trainer(model, smallData(), { steps: 4, batchSize: 2, seqLen: 16, learningRate: 1e-2 });
    await trainer.train({}, 2);
    await saveCheckpoint(trainer, dir);
    const log = new TrainLog(dir);
    await log.append({ type: 'step', step: 1 });
    await log.append({ type: 'step', step: 2 });
    await log.append({ type: 'step', step: 3 });
    await trainer.train({}, 3);
    await saveCheckpoint(trainer, dir);
    expect(readdirSync(dir).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'train-log.jsonl',
      'trainer-state.json',
    ]);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.state.step).toBe(3);
    expect(loaded.moments.size).toBe(model.parameters.size);
    const [a, b] = [await model.hostParameters(), await loaded.model.hostParameters()];
    for (const [name, p] of a) expect(Array.from(b.get(name)!.data), name).toEqual(Array.from(p.data));
    await log.truncateAfter(2);
    expect((await log.read()).map((r) => r.step)).toEqual([1, 2]);
    trainer.dispose();
    model.dispose();
    loaded.model.dispose();
  });

  it('a model folder without trainer state cannot be resumed, and says so', async () => {
    const dir = join(scratch, 'plain');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), '{}');
    await expect(loadCheckpoint(dir)).rejects.toThrow(ResumeError);
    await expect(loadCheckpoint(dir)).rejects.toThrow(/no trainer-state\.json: this is a model folder but not/);
  });
});
