/**
 * Every README example runs as written: each ```ts block that imports a @diff-transformer package is
 * written to a temporary module next to this file (so package imports resolve through the CLI's
 * dependencies) and imported. A block preceded by `<!-- readme-test: skip … -->` is left out; the
 * comment must say why (e.g. it needs a GPU).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SWIFTSHADER_ICD } from '@diff-transformer/backend-webgpu';
import { afterAll, describe, expect, it, vi } from 'vitest';

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

  for (const [i, example] of all.entries()) {
    it(`${example.file}:${example.line}`, async () => {
      const module = join(scratch, `example-${i}.ts`);
      writeFileSync(module, example.code);
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      try {
        await import(pathToFileURL(module).href);
      } finally {
        log.mockRestore();
      }
    }, 120_000);
  }
});
