/**
 * web/generate.js in headless Chromium: onnxruntime-web on its WebAssembly execution provider runs
 * the export, and its greedy ids are difftx's for the same prompt. It takes ~10–30 s: Chromium starts
 * and compiles onnxruntime's 14 MB WebAssembly module; the decoding itself is quick.
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { bundlePage, CHROMIUM, chromiumAvailable, openTestPage, pageHtml } from '@diff-transformer/browser-test';
import { DiffTransformer, generate, setBackend } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { saveModel } from '@diff-transformer/core/node';
import { exportModel } from '@diff-transformer/train/node';
import { afterAll, describe, expect, it } from 'vitest';

// CI installs Debian's chromium (scripts/setup.sh); elsewhere a missing browser skips, loudly.
const required = process.env.CI === 'true' || process.env.CI === '1';
const run = chromiumAvailable() || required;
const scratch = mkdtempSync(join(tmpdir(), 'difftx-onnx-web-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.runIf(run)(`onnxruntime-web in headless Chromium (${CHROMIUM})`, () => {
  it('runs the export on WebAssembly with difftx’s greedy ids', async () => {
    await setBackend('cpu');
    const model = DiffTransformer.create(
      { vocabSize: 256, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 128 },
      { seed: 12, std: 0.2 },
    );
    const dir = join(scratch, 'model');
    const out = join(scratch, 'onnx');
    await saveModel(model, dir);
    await exportModel(dir, out, { format: 'onnx' });
    const prompt = [72, 101, 108, 108, 111];
    const expected: number[] = [];
    for await (const id of generate(model, prompt, { maxNewTokens: 16, greedy: true })) expected.push(id);
    model.dispose();

    const ortDist = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-web')), '..', 'dist');
    const files: Record<string, { type: string; body: string | Uint8Array }> = {
      '/': { type: 'text/html; charset=utf-8', body: pageHtml('onnxruntime-web', '/entry.js') },
      '/entry.js': {
        type: 'text/javascript',
        body: await bundlePage(new URL('./browser-entry.ts', import.meta.url), {
          requireBuilt: new URL(`file://${join(ortDist, 'ort.wasm.bundle.min.mjs')}`),
        }),
      },
    };
    for (const file of readdirSync(out)) {
      files[`/model/${file}`] = { type: 'application/octet-stream', body: readFileSync(join(out, file)) };
    }
    for (const file of readdirSync(ortDist).filter((f) => /^ort-wasm-simd-threaded\.(wasm|mjs)$/.test(f))) {
      const type = file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
      files[`/ort/${file}`] = { type, body: readFileSync(join(ortDist, file)) };
    }
    const page = await openTestPage({ files, webgpu: false, ready: 'generateInPage' });
    try {
      const result = await page.page.evaluate(([ids, steps]) => window.generateInPage(ids, steps), [
        prompt,
        16,
      ] as const);
      if ('error' in result) throw new Error(result.error);
      expect(result.ids).toEqual(expected);
      expect(page.messages).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

if (!run) {
  describe('onnxruntime-web in headless Chromium', () => {
    it.skip(`needs ${CHROMIUM} (Debian package chromium; scripts/setup.sh installs it)`, () => {});
  });
}
