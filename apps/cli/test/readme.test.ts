/**
 * Every README example runs as written and prints what it says: each ```ts block that imports a
 * @diff-transformer package is written to a temporary module next to this file (so package imports
 * resolve through the CLI's dependencies) and imported. Each example states what it prints, in a comment
 * `// → …` on its console.log line; the test compares every line that statement prints with it,
 * ignoring whitespace, `…` standing for anything, and ` — ` starting a remark. A block preceded by
 * `<!-- readme-test: skip … -->` is left out; the comment must say why (e.g. it needs a GPU).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { SWIFTSHADER_ICD } from '@diff-transformer/backend-webgpu';
import { afterAll, describe, expect, it } from 'vitest';

// The WebGPU examples run on SwiftShader where there is no GPU driver (Debian's chromium ships its
// Vulkan ICD); Dawn reads this when the first example creates its instance.
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const scratch = join(here, '.readme-examples');

function readmes(): string[] {
  const files = [join(root, 'README.md')];
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(join(root, group))) {
      const file = join(root, group, name, 'README.md');
      if (existsSync(file)) files.push(file);
    }
  }
  return files;
}

interface Printing {
  __readmePrint(statement: number, ...args: unknown[]): void;
}

/** The console.log statements of an example, in order, each with what its `// → …` comment says it prints. */
function printed(code: string): Array<{ statement: string; expected: string | null }> {
  return code
    .split('\n')
    .filter((line) => line.includes('console.log('))
    .map((line) => {
      const arrow = line.indexOf('// → ');
      if (arrow < 0) return { statement: line.trim(), expected: null };
      return {
        statement: line.slice(0, arrow).trim(),
        expected: line
          .slice(arrow + 5)
          .split(' — ')[0]
          .trim(),
      };
    });
}

/** Whether a printed line is what the README says, ignoring whitespace; `…` matches anything. */
function matches(actual: string, expected: string): boolean {
  const squeeze = (text: string) => text.replace(/\s+/g, '');
  const pattern = squeeze(expected)
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${pattern}$`, 's').test(squeeze(actual));
}

function examples(file: string): Array<{ line: number; code: string }> {
  const text = readFileSync(file, 'utf8');
  const out: Array<{ line: number; code: string }> = [];
  const fence = /(<!--\s*readme-test:\s*skip[^>]*-->\s*\n)?```ts\n([\s\S]*?)```/g;
  for (let m = fence.exec(text); m; m = fence.exec(text)) {
    if (m[1] || (!/from '@diff-transformer\//.test(m[2]) && !/import '@diff-transformer\//.test(m[2]))) continue;
    out.push({ line: text.slice(0, m.index).split('\n').length, code: m[2] });
  }
  return out;
}

describe('README examples run as written', () => {
  mkdirSync(scratch, { recursive: true });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const all = readmes().flatMap((file) => examples(file).map((e) => ({ file: relative(root, file), ...e })));

  it('finds the examples', () => {
    expect(all.length).toBeGreaterThanOrEqual(3);
  });

  it('the comparison ignores whitespace, lets … stand for anything, and is not fooled', () => {
    expect(matches('[ 1, 3, 256 ]', '[1, 3, 256]')).toBe(true);
    expect(matches('Float32Array(2) [ 0.5, -1 ]', 'Float32Array(2) […]')).toBe(true);
    expect(matches('4 string', "4 'string'")).toBe(false);
    expect(matches('[ 1, 3, 255 ]', '[1, 3, 256]')).toBe(false);
    expect(matches('5 true extra', '5 true')).toBe(false);
  });

  for (const [i, example] of all.entries()) {
    it(`${example.file}:${example.line}`, async () => {
      const statements = printed(example.code);
      expect(
        statements.filter((s) => s.expected !== null).length,
        'an example says what it prints: `// → …` after a console.log',
      ).toBeGreaterThan(0);
      // Each console.log statement reports which one it is, so that one inside a loop is checked every time.
      let k = 0;
      const code = example.code
        .split('\n')
        .map((line) => line.replace('console.log(', () => `(globalThis as Printing).__readmePrint(${k++}, `))
        .join('\n');
      const module = join(scratch, `example-${i}.ts`);
      writeFileSync(module, `type Printing = { __readmePrint(k: number, ...args: unknown[]): void };\n${code}`);
      const lines: string[][] = statements.map(() => []);
      (globalThis as unknown as Printing).__readmePrint = (statement, ...args) =>
        lines[statement].push(format(...args));
      await import(pathToFileURL(module).href);
      statements.forEach(({ statement, expected }, k) => {
        expect(lines[k].length, `${statement} never printed`).toBeGreaterThan(0);
        if (expected === null) return;
        for (const line of lines[k]) expect(matches(line, expected), `${statement}\nprinted: ${line}`).toBe(true);
      });
    }, 120_000);
  }
});
