/**
 * The trainer in a real browser: headless Chromium, the CPU backend (WebAssembly, one thread: the
 * page is not cross-origin isolated) and WebGPU on SwiftShader. A few steps of a micro model: the loss
 * falls, and the losses are Node's for the same seed within float32 tolerance.
 */
import { setBackend } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageResult } from './browser/entry.js';
import { CHROMIUM, chromiumAvailable, openBrowserTrainer, type BrowserTrainer } from './browser/harness.js';
import { type PageRun, STEPS, trainLosses } from './browser/run.js';

// CI installs Debian's chromium (scripts/setup.sh); elsewhere a missing browser skips, loudly.
const required = process.env.CI === 'true' || process.env.CI === '1';
const run = chromiumAvailable() || required;

describe.runIf(run)(`training in headless Chromium (${CHROMIUM})`, () => {
  let browser: BrowserTrainer;
  let node: PageRun;
  beforeAll(async () => {
    node = await trainLosses(await setBackend('cpu'));
    browser = await openBrowserTrainer();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
  });

  const check = (result: PageRun, tolerance: number) => {
    expect(result.losses).toHaveLength(STEPS);
    expect(result.losses[STEPS - 1]).toBeLessThan(result.losses[0] - 0.5);
    for (let i = 0; i < STEPS; i++) {
      expect(Math.abs(result.losses[i] - node.losses[i]), `step ${i + 1}`).toBeLessThanOrEqual(
        tolerance * node.losses[i],
      );
    }
    expect(Math.abs(result.validation - node.validation)).toBeLessThanOrEqual(tolerance * node.validation);
  };

  it('on the CPU backend: the loss falls, as in Node', async () => {
    const result: PageResult = await browser.page.evaluate(() => window.trainInPage('cpu'));
    if (!('losses' in result)) throw new Error(JSON.stringify(result));
    console.log(`page, ${result.device}: ${result.losses.map((l) => l.toFixed(4)).join(' ')}`);
    console.log(`node, cpu: ${node.losses.map((l) => l.toFixed(4)).join(' ')}`);
    check(result, 1e-4);
    expect(browser.messages).toEqual([]);
  }, 300_000);

  it('on WebGPU (SwiftShader): the loss falls, as in Node', async () => {
    const result: PageResult = await browser.page.evaluate(() => window.trainInPage('webgpu'));
    if (!('losses' in result)) throw new Error(`WebGPU in Chromium: ${JSON.stringify(result)}`);
    console.log(`page, ${result.device}: ${result.losses.map((l) => l.toFixed(4)).join(' ')}`);
    check(result, 1e-3);
    expect(browser.messages).toEqual([]);
  }, 600_000);
});

if (!run) {
  describe('training in headless Chromium', () => {
    it.skip(`needs ${CHROMIUM} (Debian package chromium; scripts/setup.sh installs it)`, () => {});
  });
}
