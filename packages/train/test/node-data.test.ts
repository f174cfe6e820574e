import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '@diff-transformer/train';
import { brownDocuments, loadTextData, readTextDocuments } from '@diff-transformer/train/node';
import { afterAll, describe, expect, it } from 'vitest';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-data-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('training text from disk', () => {
  it('a folder: every non-hidden file, recursively, named by its relative path', async () => {
    const dir = join(scratch, 'texts');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'b.txt'), 'bee\n');
    writeFileSync(join(dir, 'a.md'), 'ay\n');
    writeFileSync(join(dir, 'sub', 'c'), 'sea\n');
    writeFileSync(join(dir, '.hidden'), '\0\0');
    const docs = await readTextDocuments(dir);
    expect(docs.map((d) => d.name)).toEqual(['a.md', 'b.txt', 'sub/c']);
    const data = await loadTextData(dir);
    expect(data).toMatchObject({ source: dir, documents: 3, bytes: 11 });
  });

  it('bad input is a DataError naming the path: missing, empty, binary, an empty folder', async () => {
    const empty = join(scratch, 'empty.txt');
    writeFileSync(empty, '');
    const binary = join(scratch, 'model.bin');
    writeFileSync(binary, Buffer.from([1, 2, 0, 3]));
    mkdirSync(join(scratch, 'nothing'));
    const binaryInFolder = join(scratch, 'mixed');
    mkdirSync(binaryInFolder);
    writeFileSync(join(binaryInFolder, 'ok.txt'), 'fine');
    writeFileSync(join(binaryInFolder, 'photo.jpg'), Buffer.from([0xff, 0xd8, 0, 0]));
    const cases: Array<[string, RegExp]> = [
      [join(scratch, 'missing.txt'), /missing\.txt: no such file or folder; give a text file/],
      [empty, /empty\.txt: the file is empty/],
      [binary, /model\.bin: not a text file \(a NUL byte at offset 2/],
      [join(scratch, 'nothing'), /nothing: the folder holds no files/],
      [binaryInFolder, /photo\.jpg: not a text file/],
    ];
    for (const [path, pattern] of cases) {
      await expect(loadTextData(path)).rejects.toThrow(DataError);
      await expect(loadTextData(path)).rejects.toThrow(pattern);
    }
  });

  it('the Brown corpus: 500 files of plain text, no tags left', async () => {
    const docs = await brownDocuments();
    expect(docs).toHaveLength(500);
    expect(docs[0].name).toBe('ca01');
    expect(docs[0].text.startsWith('The Fulton County Grand Jury said Friday an investigation of')).toBe(true);
    const sample = docs.map((d) => d.text.slice(0, 2000)).join('');
    expect(sample).not.toMatch(/\/(at|nn|vbd|in)\b/);
    const data = await loadTextData('brown');
    expect(data.split.validation).toHaveLength(50);
    expect(data.split.validation[0].name).toBe('ca10');
  });
});
