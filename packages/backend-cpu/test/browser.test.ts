/**
 * The backend in a real browser: headless Chromium (Debian's), the page served from localhost:
 *   - cross-origin isolated (COOP same-origin, COEP require-corp on every response): SharedArrayBuffer
 *     exists, so the heap is a shared memory and the kernels run on Web Workers started from blob:
 *     URLs, the page's main thread doing its share and spinning (it may not block in Atomics.wait);
 *   - not isolated: no SharedArrayBuffer, so an unshared memory and one thread.
 * Each page runs the whole conformance suite on the registered 'cpu' backend, and the test fails
 * naming each case that failed there. The isolated page also runs a 256³ matmul on 2 and 4 threads,
 * in memory the heap grew into after the workers started, against a single-threaded backend (bit
 * for bit) and a float64 reference; runs the suite again inside a module Web Worker loaded from a
 * URL (where the backend's thread may block and its workers are nested); and makes its workers fail
 * while they start. Two more pages send a Content-Security-Policy: one forbidding blob: workers
 * (one thread, with a warning), one forbidding WebAssembly compilation (the TypeScript engine).
 */
import type { ConformanceReport } from '@diff-transformer/conformance';
import { selectCases } from '@diff-transformer/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, chromiumAvailable, launchBrowser, type Browser, type BrowserPage } from './browser/harness.js';

// CI installs Debian's chromium (scripts/setup.sh); elsewhere a missing browser skips, loudly.
const required = process.env.CI === 'true' || process.env.CI === '1';
const run = chromiumAvailable() || required;

function failures(report: ConformanceReport): string[] {
  return report.cases.filter((c) => c.status !== 'pass').map((c) => `${c.status}: ${c.name} — ${c.message ?? ''}`);
}

function expectEveryCasePassed(report: ConformanceReport): void {
  expect(failures(report), `failed in the page:\n${failures(report).join('\n')}`).toEqual([]);
  expect(report.cases.map((c) => c.name)).toEqual(selectCases().map((c) => c.name));
}

describe.runIf(run)(`the backend in headless Chromium (${CHROMIUM})`, () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  describe('a cross-origin-isolated page', () => {
    let tab: BrowserPage;
    beforeAll(async () => {
      tab = await browser.open({ isolated: true });
    }, 60_000);

    it('runs every conformance case on Web Workers over a shared memory', async () => {
      const run = await tab.page.evaluate(() => window.cpuSuite());
      console.log(
        `isolated page: ${run.device}; ${JSON.stringify(run.environment)}; ` +
          `${run.report.summary.pass}/${run.report.cases.length} cases pass`,
      );
      expect(run.environment).toMatchObject({ crossOriginIsolated: true, sharedArrayBuffer: true, canBlock: false });
      expect(run.environment.hardwareConcurrency).toBeGreaterThanOrEqual(2);
      expect(run.sharedMemory).toBe(true);
      expect(run.threads).toBe(run.environment.hardwareConcurrency);
      expect(run.device).toBe(
        `CPU (WebAssembly ${run.engine === 'wasm-relaxed-simd' ? 'relaxed SIMD' : 'SIMD128'}, ` +
          `${run.threads} threads, float32)`,
      );
      expectEveryCasePassed(run.report);
      expect(tab.messages).toEqual([]);
    }, 60_000);

    it('a 256×256×256 matmul runs on every thread, in grown memory, exactly as one thread computes it', async () => {
      const run = await tab.page.evaluate(() => window.cpuMatmul({ m: 256, k: 256, n: 256 }));
      console.log(`isolated page: matmul 256³: ${JSON.stringify(run)}`);
      expect(run.threads).toBeGreaterThanOrEqual(2);
      expect(run.capacityAfter).toBeGreaterThan(run.capacityBefore);
      expect(run.tasks).toBeGreaterThan(0);
      // The workers claimed tasks: the kernel did not merely run on the page's thread.
      expect(run.workerTasks).toBeGreaterThan(0);
      expect(run.mismatches).toBe(0);
      expect(run.relativeError).toBeLessThan(1e-5);
      expect(tab.messages).toEqual([]);
    }, 60_000);

    it('more threads than cores: three workers from blob: URLs, the page spinning while they finish', async () => {
      const run = await tab.page.evaluate(() => window.cpuMatmul({ m: 256, k: 256, n: 256, threads: 4 }));
      console.log(`isolated page: matmul 256³: ${JSON.stringify(run)}`);
      expect(run.device).toMatch(/^CPU \(WebAssembly (relaxed SIMD|SIMD128), 4 threads, float32\)$/);
      expect(run.workerTasks).toBeGreaterThan(0);
      expect(run.mismatches).toBe(0);
      expect(run.relativeError).toBeLessThan(1e-5);
      expect(tab.messages).toEqual([]);
    }, 60_000);

    it('inside a module Web Worker (from /worker.js): every case passes, its own workers nested, ' +
      'its thread blocking in Atomics.wait', async () => {
      const run = await tab.page.evaluate(() => window.cpuInWorker());
      if ('error' in run) throw new Error(run.error);
      const { suite, matmul } = run;
      console.log(
        `module worker in the isolated page: ${suite.device}; ${JSON.stringify(suite.environment)}; ` +
          `${suite.report.summary.pass}/${suite.report.cases.length} cases pass; ` +
          `matmul 256³: ${JSON.stringify(matmul)}`,
      );
      expect(suite.environment).toMatchObject({ crossOriginIsolated: true, sharedArrayBuffer: true, canBlock: true });
      expect(suite.sharedMemory).toBe(true);
      expect(suite.threads).toBe(suite.environment.hardwareConcurrency);
      expectEveryCasePassed(suite.report);
      expect(matmul.workerTasks).toBeGreaterThan(0);
      expect(matmul.mismatches).toBe(0);
      expect(matmul.relativeError).toBeLessThan(1e-5);
      expect(tab.messages).toEqual([]);
    }, 60_000);

    it('workers that fail while they start: the backend warns and runs on the page thread, ' +
      'it does not hang', async () => {
      const run = await tab.page.evaluate(() => window.cpuBrokenWorkers());
      expect(run).not.toHaveProperty('hung');
      expect(run).toMatchObject({ threads: 1, product: [7, 10, 15, 22] });
      expect(tab.messages).toHaveLength(1);
      expect(tab.messages[0]).toMatch(
        new RegExp(
          /^console warning: backend 'cpu': worker threads could not start /.source +
            /\(Error: worker thread failed: .*memory.*\); running on one thread$/.source,
        ),
      );
      tab.messages.length = 0;
    }, 60_000);
  });

  describe('a page without cross-origin isolation', () => {
    let tab: BrowserPage;
    beforeAll(async () => {
      tab = await browser.open({ isolated: false });
    }, 60_000);

    it('runs every conformance case on one thread with an unshared memory', async () => {
      const run = await tab.page.evaluate(() => window.cpuSuite());
      console.log(
        `plain page: ${run.device}; ${JSON.stringify(run.environment)}; ` +
          `${run.report.summary.pass}/${run.report.cases.length} cases pass`,
      );
      expect(run.environment).toMatchObject({ crossOriginIsolated: false, sharedArrayBuffer: false, canBlock: false });
      expect(run.sharedMemory).toBe(false);
      expect(run.threads).toBe(1);
      expect(run.device).toMatch(/^CPU \(WebAssembly (relaxed SIMD|SIMD128), 1 thread, float32\)$/);
      expectEveryCasePassed(run.report);
      expect(tab.messages).toEqual([]);
    }, 60_000);

    it('the same matmul, on the one thread', async () => {
      const run = await tab.page.evaluate(() => window.cpuMatmul({ m: 256, k: 256, n: 256 }));
      expect(run).toMatchObject({
        threads: 1,
        sharedMemory: false,
        repeats: 1,
        tasks: 0,
        workerTasks: 0,
        mismatches: 0,
      });
      expect(run.relativeError).toBeLessThan(1e-5);
      expect(tab.messages).toEqual([]);
    }, 60_000);
  });

  describe('pages with a Content-Security-Policy', () => {
    it("isolated, but blob: workers forbidden (worker-src 'self'): one thread over the shared memory, " +
      'and a warning that says why', async () => {
      const tab = await browser.open({ isolated: true, csp: "worker-src 'self'" });
      const run = await tab.page.evaluate(() => window.cpuMatmul({ m: 64, k: 64, n: 64, threads: 2 }));
      expect(run).toMatchObject({ threads: 1, sharedMemory: true, mismatches: 0 });
      expect(run.relativeError).toBeLessThan(1e-5);
      const warning = new RegExp(
        /^console warning: backend 'cpu': worker threads could not start /.source +
          /\(Error: the worker script did not load \(.*worker-src.*\)\); running on one thread$/.source,
      );
      expect(tab.messages.filter((m) => warning.test(m))).toHaveLength(1);
      // The rest: Chromium's own report of the blocked worker.
      expect(tab.messages.filter((m) => !warning.test(m))).toEqual([
        expect.stringMatching(
          /^console error: Creating a worker from 'blob:.*violates the following Content Security Policy directive/,
        ),
      ]);
    }, 60_000);

    it("compiling WebAssembly forbidden (script-src 'self', no 'wasm-unsafe-eval'): " +
      'the TypeScript engine passes every case', async () => {
      const tab = await browser.open({ isolated: false, csp: "script-src 'self'" });
      const run = await tab.page.evaluate(() => window.cpuSuite());
      console.log(
        `page without wasm-unsafe-eval: ${run.device}; ` +
          `${run.report.summary.pass}/${run.report.cases.length} cases pass`,
      );
      expect(run).toMatchObject({
        engine: 'typescript',
        device: 'CPU (TypeScript, 1 thread, float32)',
        threads: 1,
        sharedMemory: false,
      });
      expectEveryCasePassed(run.report);
      expect(tab.messages).toEqual([
        expect.stringMatching(
          new RegExp(
            /^console warning: backend 'cpu': the WebAssembly engine could not start /.source +
              /\(CompileError: .*Content Security Policy.*\); running the TypeScript engine$/.source,
          ),
        ),
      ]);
    }, 60_000);
  });
});

if (!run) {
  console.warn(
    `backend-cpu browser test skipped: ${CHROMIUM} is missing (Debian package chromium; scripts/setup.sh installs it)`,
  );
  describe('the backend in headless Chromium', () => {
    it.skip(`needs ${CHROMIUM} (Debian package chromium; scripts/setup.sh installs it)`, () => {});
  });
}
