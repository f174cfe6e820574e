/**
 * writeFolderAtomic and settleFolder directly: what is carried over, a verification that fails before
 * the swap, and each state a killed save can leave (made by hand, with the id of a process that ended).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { settleFolder, writeFolderAtomic } from '../src/node/index.js';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-folder-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const file = (name: string, text: string) => ({ name, chunks: [new TextEncoder().encode(text)] });

/** The id of a process that has ended (so its leftovers count as abandoned). */
function deadPid(): number {
  return Number(
    spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout,
  );
}

describe('writeFolderAtomic', () => {
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
