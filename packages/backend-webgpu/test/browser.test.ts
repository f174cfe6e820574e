/**
 * The whole conformance suite inside a real browser: headless Chromium with WebGPU on SwiftShader,
 * the backend using navigator.gpu. Fails naming every case that failed in the page, and checks that a
 * broken kernel does fail there.
 */
import type { ConformanceReport } from '@diff-transformer/conformance';
import { conformanceCases } from '@diff-transformer/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, chromiumAvailable, openBrowserSuite, type BrowserSuite } from './browser/harness.js';

// CI installs Debian's chromium (scripts/setup.sh); elsewhere a missing browser skips, loudly.
const required = process.env.CI === 'true' || process.env.CI === '1';
const run = chromiumAvailable() || required;

describe.runIf(run)(`conformance in headless Chromium (${CHROMIUM})`, () => {
  let suite: BrowserSuite;
  beforeAll(async () => {
    suite = await openBrowserSuite();
  }, 120_000);
  afterAll(async () => {
    await suite?.close();
  });

  function failures(report: ConformanceReport): string[] {
    return report.cases.filter((c) => c.status !== 'pass').map((c) => `${c.status}: ${c.name} — ${c.message ?? ''}`);
  }

  it('every case of the suite passes in the page', async () => {
    const result = await suite.run();
    if ('unavailable' in result) throw new Error(`WebGPU is unavailable in Chromium: ${result.unavailable}`);
    expect(result.device).toMatch(/^WebGPU \(.*navigator\.gpu/);
    expect(failures(result), `failed in the page:\n${failures(result).join('\n')}`).toEqual([]);
    expect(result.cases.map((c) => c.name)).toEqual(conformanceCases().map((c) => c.name));
    expect(result.summary.pass).toBe(conformanceCases().length);
    expect(suite.errors).toEqual([]);
  }, 900_000);

  it('a broken kernel fails its cases in the page (the test would catch it)', async () => {
    const result = await suite.run({ filter: '^add/', breakAdd: true });
    if ('unavailable' in result) throw new Error(result.unavailable);
    expect(result.cases.length).toBeGreaterThan(0);
    expect(result.summary.fail).toBe(result.cases.length);
  }, 300_000);
});

if (!run) {
  describe('conformance in headless Chromium', () => {
    it.skip(`needs ${CHROMIUM} (Debian package chromium; scripts/setup.sh installs it)`, () => {});
  });
}
