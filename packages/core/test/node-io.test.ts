import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointConfigError, CheckpointIOError } from '../src/index.js';
import {
  directorySource,
  fileSource,
  readModel,
  readSafetensorsFile,
  writeFileAtomic,
  writeSafetensorsFile,
} from '../src/node/index.js';

const dir = mkdtempSync(join(tmpdir(), 'difftx-node-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('@diff-transformer/core/node', () => {
  it('writes safetensors files atomically and reads them back through a file source', async () => {
    const path = join(dir, 'a.safetensors');
    await writeSafetensorsFile(path, [['w', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }]], {
      format: 'pt',
    });
    const file = await readSafetensorsFile(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(values(await file.read('w'))).toEqual([1, 2, 3, 4, 5, 6]);
    await file.close();
    expect(readdirSync(dir)).toEqual(['a.safetensors']);
  });

  it('a failure while writing leaves the previous file untouched and no temporary file', async () => {
    const path = join(dir, 'keep.bin');
    writeFileSync(path, 'previous contents');
    const failing = () => {
      throw new CheckpointIOError(path, 'simulated failure half-way');
    };
    await expect(writeFileAtomic(path, [new Uint8Array(1000), failing])).rejects.toThrow(/simulated failure/);
    expect(readFileSync(path, 'utf8')).toBe('previous contents');
    expect(readdirSync(dir).filter((f) => f.includes('keep.bin'))).toEqual(['keep.bin']);
    await expect(writeFileAtomic(join(dir, 'missing', 'x.bin'), [new Uint8Array(1)])).rejects.toThrow(
      CheckpointIOError,
    );
  });

  it('file sources report missing files and out-of-range reads as typed errors', async () => {
    await expect(fileSource(join(dir, 'nope'))).rejects.toThrow(
      /nope: cannot open: not found \(no such file or directory\)/,
    );
    await expect(fileSource(dir)).rejects.toThrow(/not a regular file/);
    const path = join(dir, 'small.bin');
    writeFileSync(path, new Uint8Array([1, 2, 3]));
    const source = await fileSource(path);
    expect(Array.from(await source.read(1, 2))).toEqual([2, 3]);
    await expect(source.read(2, 5)).rejects.toThrow(CheckpointIOError);
    await source.close!();
    const folder = directorySource(dir);
    expect(await folder.exists('small.bin')).toBe(true);
    expect(await folder.exists('nothing')).toBe(false);
    await expect(folder.readText('nothing')).rejects.toThrow(CheckpointIOError);
  });

  it('says a model folder is not found, not a folder or unreadable, before it says it lacks config.json', async () => {
    await expect(readModel(join(dir, 'no-such-model'))).rejects.toThrow(CheckpointIOError);
    await expect(readModel(join(dir, 'no-such-model'))).rejects.toThrow(
      /no-such-model: cannot read the folder: not found \(no such file or directory\)$/,
    );
    writeFileSync(join(dir, 'a-file'), 'x');
    await expect(readModel(join(dir, 'a-file'))).rejects.toThrow(/a-file: cannot read the folder: not a folder$/);
    mkdirSync(join(dir, 'empty-model'));
    await expect(readModel(join(dir, 'empty-model'))).rejects.toThrow(CheckpointConfigError);
    await expect(readModel(join(dir, 'empty-model'))).rejects.toThrow(/empty-model\/config\.json: no config\.json/);
  });

  // Root reads every folder, so only an unprivileged user can see the refusal.
  it.skipIf(process.getuid?.() === 0)('says permission denied for a folder it may not read', async () => {
    const locked = join(dir, 'locked-model');
    mkdirSync(locked);
    chmodSync(locked, 0o000);
    try {
      await expect(readModel(locked)).rejects.toThrow(/locked-model.*: permission denied$/);
    } finally {
      chmodSync(locked, 0o755);
    }
  });
});

/** Any typed array (including BigInt64Array) as a plain array, for toEqual. */
function values(a: unknown): unknown[] {
  return Array.from(a as ArrayLike<unknown>);
}
