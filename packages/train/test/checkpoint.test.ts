import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackend } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { ResumeError, Trainer } from '@diff-transformer/train';
import {
  loadCheckpoint,
  saveCheckpoint,
  settleFolder,
  TrainLog,
  writeFolderAtomic,
} from '@diff-transformer/train/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { microModel, smallData } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-checkpoint-'));
beforeAll(async () => {
  await setBackend('cpu');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const file = (name: string, text: string) => ({ name, chunks: [new TextEncoder().encode(text)] });

/** The id of a process that has ended (so its leftovers count as abandoned). */
function deadPid(): number {
  return Number(
    spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout,
  );
}

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

  it('writes a folder as a whole: replaced files go, other files are carried over', async () => {
    const dir = join(scratch, 'whole');
    await writeFolderAtomic(dir, [file('a', '1'), file('b', '1')]);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    await writeFolderAtomic(dir, [file('a', '2')], { replaces: (name) => name === 'b' });
    expect(readdirSync(dir).sort()).toEqual(['a', 'notes.txt']);
    expect(readFileSync(join(dir, 'a'), 'utf8')).toBe('2');
    expect(readdirSync(scratch).filter((n) => n.startsWith('.whole'))).toEqual([]);
  });

  it('a failed verification leaves the old folder as it was and nothing beside it', async () => {
    const dir = join(scratch, 'verified');
    await writeFolderAtomic(dir, [file('a', 'old')]);
    const attempt = writeFolderAtomic(dir, [file('a', 'new')], {
      verify: async () => {
        throw new Error('no');
      },
    });
    await expect(attempt).rejects.toThrow();
    expect(readFileSync(join(dir, 'a'), 'utf8')).toBe('old');
    expect(readdirSync(scratch).filter((n) => n.startsWith('.verified'))).toEqual([]);
  });

  it('settles what a killed save left: before, between and after the two renames', async () => {
    const pid = deadPid();
    const made = (name: string, content: string) => {
      mkdirSync(join(scratch, name));
      writeFileSync(join(scratch, name, 'a'), content);
    };
    // Killed while writing the new folder: the old one stays, the staging folder goes.
    made('k1', 'old');
    made(`.k1.${pid}-0000000a.new`, 'half');
    await settleFolder(join(scratch, 'k1'));
    expect(readFileSync(join(scratch, 'k1', 'a'), 'utf8')).toBe('old');
    // Killed between the renames: the old one is aside, the new one complete: it moves in.
    made(`.k2.${pid}-0000000b.new`, 'new');
    made(`.k2.${pid}-0000000b.old`, 'old');
    await settleFolder(join(scratch, 'k2'));
    expect(readFileSync(join(scratch, 'k2', 'a'), 'utf8')).toBe('new');
    // Killed before removing the old one.
    made('k3', 'new');
    made(`.k3.${pid}-0000000c.old`, 'old');
    await settleFolder(join(scratch, 'k3'));
    expect(readFileSync(join(scratch, 'k3', 'a'), 'utf8')).toBe('new');
    expect(readdirSync(scratch).filter((n) => /^\.k\d/.test(n))).toEqual([]);
    // Another live process's staging folder is its save in flight: left alone.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      made(`.k4.${other.pid}-0000000d.new`, 'in flight elsewhere');
      await settleFolder(join(scratch, 'k4'));
      expect(existsSync(join(scratch, `.k4.${other.pid}-0000000d.new`))).toBe(true);
    } finally {
      other.kill();
    }
  });
});
