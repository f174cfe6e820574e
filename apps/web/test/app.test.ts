/**
 * The built app in headless Chromium (WebGPU on SwiftShader, the CPU backend cross-origin isolated),
 * checked against Node: the same generated ids as core's generate() on the same model folder, and the
 * same attention maps as the float64 reference computes from that folder. One page serves every check,
 * in order, as a person would use it; each view is screenshotted into test-artifacts/.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ByteTokenizer,
  disposeBackend,
  generate,
  initParameters,
  memoryFolder,
  readModelFolder,
  resolveConfig,
  type SamplingOptions,
  setBackend,
} from '@diff-transformer/core';
import { loadModel, loadTokenizer, readModel, saveDiffLlama } from '@diff-transformer/core/node';
import { byteLevelTokenizerJson } from '@diff-transformer/train';
import '@diff-transformer/backend-cpu';
import * as reference from '@diff-transformer/reference';
import { unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageState } from '../src/main.js';
import { type AppPage, CHROMIUM, chromiumAvailable, DIST, launch, openApp, screenshot, serveDist } from './harness.js';

// CI installs Debian's chromium (scripts/setup.sh); elsewhere a missing browser skips, loudly.
const required = process.env.CI === 'true' || process.env.CI === '1';
const run = chromiumAvailable() || required;

const DIFF_FOLDER = join(DIST, 'models/diff');
const PROMPT = 'The jury said that';
const SAMPLING: SamplingOptions = { temperature: 0.8, topK: 40, topP: 0.95 };
const SEED = 3;
const NEW_TOKENS = 16;

function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => (window as unknown as { difftx: { state: PageState } }).difftx.state);
}

async function idle(page: Page): Promise<PageState> {
  await page.waitForFunction(
    () => (window as unknown as { difftx: { state: PageState } }).difftx.state.busy === null,
    undefined,
    { timeout: 240_000 },
  );
  return pageState(page);
}

async function selectBackend(page: Page, name: string): Promise<PageState> {
  await page.selectOption('#backend', name);
  // The change starts the switch; wait for it to begin, then to end.
  await page.waitForFunction(
    (wanted) => (window as unknown as { difftx: { state: PageState } }).difftx.state.backends?.active === wanted,
    name,
    { timeout: 120_000 },
  );
  return idle(page);
}

/** What Node's core makes of the same folder, prompt, seed and sampling on the CPU backend. */
async function nodeIds(folder = DIFF_FOLDER): Promise<number[]> {
  await setBackend('cpu');
  const model = await loadModel(folder);
  try {
    const ids: number[] = [];
    const prompt = ((await loadTokenizer(folder)) ?? new ByteTokenizer()).encode(PROMPT);
    for await (const id of generate(model, prompt, { maxNewTokens: NEW_TOKENS, seed: SEED, ...SAMPLING })) ids.push(id);
    return ids;
  } finally {
    model.dispose();
  }
}

async function generateInPage(page: Page): Promise<PageState['generation']> {
  await page.fill('#generate-prompt', PROMPT);
  await page.selectOption('#generate-slot', 'diff');
  await page.fill('#max-new-tokens', String(NEW_TOKENS));
  await page.fill('#temperature', String(SAMPLING.temperature));
  await page.fill('#top-k', String(SAMPLING.topK));
  await page.fill('#top-p', String(SAMPLING.topP));
  await page.fill('#seed', String(SEED));
  await page.click('#generate-button');
  await page.waitForFunction(
    () => (window as unknown as { difftx: { state: PageState } }).difftx.state.generation !== null,
    undefined,
    { timeout: 240_000 },
  );
  return (await idle(page)).generation;
}

/** WCAG 2 contrast ratio of two CSS colours rgb(a)(…). */
function contrast(foreground: string, background: string): number {
  const luminance = (color: string) => {
    const [r, g, b] = (color.match(/[\d.]+/g) ?? []).slice(0, 3).map((c) => {
      const v = Number(c) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [luminance(foreground), luminance(background)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}

describe.runIf(run)(`the web app in headless Chromium (${CHROMIUM})`, () => {
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;
  let app: AppPage;

  beforeAll(async () => {
    server = await serveDist();
    browser = await launch();
    app = await openApp(browser, server.url);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await disposeBackend('cpu');
  });

  it('loads with no console errors, both backends available, the built-in pair and the needle maps shown', async () => {
    const state = await pageState(app.page);
    expect(state.error).toBeNull();
    expect(app.messages).toEqual([]);
    const available = state.backends!.backends.filter((b) => b.available).map((b) => b.name);
    expect(available.sort()).toEqual(['cpu', 'webgpu']);
    expect(state.models.diff?.config.attention).toBe('differential');
    expect(state.models.baseline?.config.attention).toBe('standard');
    expect(state.attention?.ids.length).toBeGreaterThan(100);
    expect(await app.page.evaluate(() => crossOriginIsolated)).toBe(true);
    await screenshot(app.page, 'page');
    await screenshot(app.page, 'models', '#model-section');
  });

  it('each backend can be selected, and the models move with it', async () => {
    for (const name of ['cpu', 'webgpu']) {
      const state = await selectBackend(app.page, name);
      expect(state.error).toBeNull();
      expect(state.backends!.backends.find((b) => b.active)?.name).toBe(name);
      expect(await app.page.textContent('#backend-device')).toContain(name === 'cpu' ? 'CPU (WebAssembly' : 'WebGPU');
      expect(state.models.diff?.lambdas.length).toBe(2);
    }
    await screenshot(app.page, 'backend', '#backend-section');
  });

  it('generation with a fixed seed gives the ids Node gives for the same model, on WebGPU and on the CPU', async () => {
    const expected = await nodeIds();
    expect(expected).toHaveLength(NEW_TOKENS);
    for (const name of ['webgpu', 'cpu']) {
      await selectBackend(app.page, name);
      const generation = await generateInPage(app.page);
      expect(generation?.promptIds).toEqual(new ByteTokenizer().encode(PROMPT));
      expect(generation?.ids, `ids on ${name}`).toEqual(expected);
      expect(generation?.tokensPerSecond).toBeGreaterThan(0);
      expect(await app.page.textContent('#generate-output')).toBe(PROMPT + generation!.text);
    }
    await screenshot(app.page, 'generate', '#generate');
  });

  it('the attention maps shown are the float64 reference maps of the prompt, head by head', async () => {
    await app.page.click('#needle-example');
    const state = await idle(app.page);
    const { ids, maps } = state.attention!;
    expect(ids).toEqual(new ByteTokenizer().encode(await app.page.inputValue('#attention-prompt')));
    for (const slot of ['diff', 'baseline'] as const) {
      const folder = await readModel(join(DIST, `models/${slot}`));
      const expected = reference.attentionMaps(folder.config, folder.parameters, [ids]);
      const shown = maps[slot]!;
      expect(shown.layers).toHaveLength(expected.layers.length);
      let worst = 0;
      expected.layers.forEach((layer, l) => {
        expect(shown.layers[l].lambda).toBe(layer.lambda);
        layer.heads.forEach((head, h) => {
          const got = shown.layers[l].heads[h];
          const pairs: Array<[ArrayLike<number>, ArrayLike<number>]> =
            head.kind === 'differential' && got.kind === 'differential'
              ? [
                  [got.map1, head.map1.data],
                  [got.map2, head.map2.data],
                  [got.lambda, head.lambda.data],
                  [got.differential, head.differential.data],
                ]
              : head.kind === 'softmax' && got.kind === 'softmax'
                ? [[got.map, head.map.data]]
                : [];
          expect(pairs.length, `layer ${l} head ${h} is ${got.kind}, the reference's ${head.kind}`).toBeGreaterThan(0);
          for (const [a, b] of pairs) {
            expect(a.length).toBe(b.length);
            for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
          }
        });
      });
      // The same float32 parameters both ways (read back from the device, read from the file): only the
      // browser's and Node's Math.exp may differ in the last bit.
      expect(worst, `${slot} maps against the reference`).toBeLessThan(1e-12);
    }
    // The DIFF λ the page shows (read back from the device) against the reference's λ from the file.
    const diff = await readModel(DIFF_FOLDER);
    state.models.diff!.lambdas.forEach((lambda, layer) => {
      expect(lambda).toBeCloseTo(reference.referenceLambda(diff.parameters, layer), 5);
    });
    // Hover and keyboard read cells: the readout names the token pair and the value.
    const canvas = app.page.locator('#map-differential canvas');
    await canvas.hover({ position: { x: 280, y: 280 } });
    await expect
      .poll(() => app.page.textContent('#map-differential output'))
      .toMatch(/^query \d+ “.*” → key \d+ “.*”: /);
    await canvas.focus();
    await app.page.keyboard.press('ArrowLeft');
    await expect.poll(() => app.page.textContent('#map-differential output')).toMatch(/→ key \d+/);
    await screenshot(app.page, 'attention', '#attention');
    await app.page.selectOption('#attention-layer', '1');
    await screenshot(app.page, 'attention-layer-1', '#attention');
  });

  it('a few training steps on the CPU lower the loss of both models, with a stop and a resume', async () => {
    await selectBackend(app.page, 'cpu');
    // A run far longer than the test: each stop lands long before its end, however fast the machine.
    await app.page.fill('#train-steps', '400');
    await app.page.fill('#train-seq', '32');
    await app.page.fill('#train-batch', '4');
    const stopAfter = async (count: number) => {
      await app.page.waitForFunction(
        (n) => (window as unknown as { difftx: { state: PageState } }).difftx.state.losses.length >= n,
        count,
        { timeout: 120_000 },
      );
      await app.page.click('#train-stop');
      return idle(app.page);
    };
    await app.page.click('#train-start');
    const stopped = await stopAfter(3);
    expect(stopped.error).toBeNull();
    const at = stopped.losses.length;
    expect(await app.page.textContent('#train-status')).toMatch(new RegExp(`^stopped at step ${at} of 400`));
    // Resume continues the same run: steps go on from where it stopped.
    await app.page.click('#train-resume');
    const state = await stopAfter(at + 12);
    expect(state.error).toBeNull();
    const losses = state.losses;
    expect(losses.map((l) => l.step)).toEqual(Array.from({ length: losses.length }, (_, i) => i + 1));
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    for (const slot of ['diff', 'baseline'] as const) {
      const first = mean(losses.slice(0, 3).map((l) => l[slot]));
      const last = mean(losses.slice(-3).map((l) => l[slot]));
      expect(last, `${slot}: the loss after ${losses.length} steps against the first steps'`).toBeLessThan(first - 0.3);
    }
    expect(state.models.diff?.source).toBe('trained in the page');
    await screenshot(app.page, 'train', '#train');
    // The trained DIFF model downloads as a zipped model folder that core reads back.
    const [download] = await Promise.all([app.page.waitForEvent('download'), app.page.click('#save-diff')]);
    expect(download.suggestedFilename()).toBe('diff-transformer-diff.zip');
    const zipped = unzipSync(new Uint8Array(readFileSync(await download.path())));
    const folder = Object.fromEntries(
      Object.entries(zipped).map(([name, bytes]) => [name.replace('diff-transformer-diff/', ''), bytes]),
    );
    expect(Object.keys(folder).sort()).toEqual(['config.json', 'model.safetensors']);
    const saved = await readModelFolder(memoryFolder(folder));
    expect(saved.config.attention).toBe('differential');
    expect(saved.config.hiddenSize).toBe(64);
  });

  it('training runs on WebGPU too (SwiftShader): a few steps lower the loss of both models', async () => {
    await selectBackend(app.page, 'webgpu');
    await app.page.fill('#train-steps', '400');
    await app.page.fill('#train-seq', '32');
    await app.page.fill('#train-batch', '4');
    await app.page.click('#train-start');
    await app.page.waitForFunction(
      () => (window as unknown as { difftx: { state: PageState } }).difftx.state.losses.length >= 12,
      undefined,
      { timeout: 240_000 },
    );
    await app.page.click('#train-stop');
    const state = await idle(app.page);
    expect(state.error).toBeNull();
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    for (const slot of ['diff', 'baseline'] as const) {
      const first = mean(state.losses.slice(0, 3).map((l) => l[slot]));
      const last = mean(state.losses.slice(-3).map((l) => l[slot]));
      expect(last, `${slot} on WebGPU: the loss after ${state.losses.length} steps`).toBeLessThan(first - 0.3);
    }
    await selectBackend(app.page, 'cpu');
  }, 300_000);

  it('a corrupt model file shows the loader’s clear error, and the page keeps working', async () => {
    const config = readFileSync(join(DIFF_FOLDER, 'config.json'));
    const weights = readFileSync(join(DIFF_FOLDER, 'model.safetensors'));
    // A header length that runs past the end of the file.
    const corrupt = Buffer.from(weights.subarray(0, 64));
    await app.page.setInputFiles('#files-input', [
      { name: 'config.json', mimeType: 'application/json', buffer: config },
      { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: corrupt },
    ]);
    const state = await idle(app.page);
    expect(state.error).toMatch(/model\.safetensors/);
    expect(state.error).toMatch(/header/i);
    expect(await app.page.isVisible('#error')).toBe(true);
    await screenshot(app.page, 'corrupt-model');
    // Still working: the previous models generate.
    const generation = await generateInPage(app.page);
    expect(generation?.ids).toHaveLength(NEW_TOKENS);
    expect((await pageState(app.page)).error).toBeNull();
    expect(app.messages).toEqual([]);
  });

  it('a Hugging Face DiffLlama folder (sharded, with tokenizer.json) loads and generates as it does in Node', async () => {
    const config = resolveConfig({
      vocabSize: 256,
      hiddenSize: 32,
      numLayers: 2,
      numHeads: 2,
      rope: { layout: 'half', precision: 'float32' },
      subLayerNorm: { affine: false },
    });
    const dir = mkdtempSync(join(tmpdir(), 'difftx-web-diffllama-'));
    try {
      await saveDiffLlama(config, initParameters(config, { seed: 5, std: 0.2 }), dir, { maxShardBytes: 40_000 });
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson()));
      const names = readdirSync(dir);
      expect(names).toContain('model.safetensors.index.json');
      await app.page.setInputFiles(
        '#files-input',
        names.map((name) => ({ name, mimeType: 'application/octet-stream', buffer: readFileSync(join(dir, name)) })),
      );
      const state = await idle(app.page);
      expect(state.error).toBeNull();
      expect(state.models.diff).toMatchObject({ layout: 'diffllama', tokenizer: 'tokenizer.json' });
      const generation = await generateInPage(app.page);
      expect(generation?.ids).toEqual(await nodeIds(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('basic accessibility: every control is labelled, the maps take the keyboard, text has contrast', async () => {
    const unlabelled = await app.page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea, button')]
        .filter((e) => {
          const control = e as HTMLInputElement;
          const named = control.labels?.length || e.getAttribute('aria-label') || (e.textContent ?? '').trim();
          return !named;
        })
        .map((e) => e.outerHTML.slice(0, 80)),
    );
    expect(unlabelled).toEqual([]);
    const focusable = await app.page.evaluate(() =>
      [...document.querySelectorAll('.heatmap canvas')].every((c) => (c as HTMLElement).tabIndex === 0),
    );
    expect(focusable).toBe(true);
    const colours = await app.page.evaluate(() =>
      ['h1', 'header p', 'label', '.status', '.readout', 'button', '#error', 'footer p'].map((selector) => {
        const e = document.querySelector(selector) as HTMLElement;
        const style = getComputedStyle(e);
        let background = 'rgba(0, 0, 0, 0)';
        for (let node: HTMLElement | null = e; node && /rgba\(0, 0, 0, 0\)/.test(background); node = node.parentElement)
          background = getComputedStyle(node).backgroundColor;
        return {
          selector,
          color: style.color,
          background: /rgba\(0, 0, 0, 0\)/.test(background) ? 'rgb(255, 255, 255)' : background,
        };
      }),
    );
    for (const { selector, color, background } of colours) {
      expect(contrast(color, background), `${selector}: ${color} on ${background}`).toBeGreaterThanOrEqual(4.5);
    }
  });
});

if (!run) {
  describe('the web app in headless Chromium', () => {
    it.skip(`needs ${CHROMIUM} (Debian package chromium; scripts/setup.sh installs it)`, () => {});
  });
}
