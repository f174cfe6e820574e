/**
 * Runs the conformance suite inside headless Chromium with WebGPU on SwiftShader (the shared plumbing
 * of @diff-transformer/browser-test): bundles test/browser/entry.ts (the built packages, as an app
 * gets them) and serves it from a localhost server.
 */
import {
  bundlePage,
  collectMessages,
  launchChromium,
  pageHtml,
  serveFiles,
  type LocalServer,
} from '@diff-transformer/browser-test';
import type { ConformanceReport } from '@diff-transformer/conformance';
import type { Browser } from 'playwright-core';
import type { SuiteOptions } from './entry.js';

export { CHROMIUM, chromiumAvailable } from '@diff-transformer/browser-test';

/** The page bundle: one ES module with core, the suite and the backend from their built dist/. */
export function bundle(): Promise<string> {
  return bundlePage(new URL('./entry.ts', import.meta.url), {
    requireBuilt: new URL('../../dist/index.js', import.meta.url),
    // The Node-only loader is never reached in a page (navigator.gpu exists): leave its imports alone.
    external: ['node:*', 'webgpu'],
  });
}

export interface BrowserSuite {
  run(options?: SuiteOptions): Promise<ConformanceReport | { unavailable: string }>;
  close(): Promise<void>;
  /** Console errors and page errors seen so far. */
  readonly errors: string[];
}

export async function openBrowserSuite(): Promise<BrowserSuite> {
  const script = await bundle();
  const server: LocalServer = await serveFiles({
    '/': { type: 'text/html', body: pageHtml('diff-transformer webgpu conformance', '/suite.js') },
    '/suite.js': { type: 'text/javascript', body: script },
  });
  let browser: Browser | undefined;
  try {
    browser = await launchChromium({ webgpu: true });
    const tab = await browser.newPage();
    const errors = collectMessages(tab, { warnings: false });
    await tab.goto(server.url);
    await tab.waitForFunction(() => typeof window.runSuite === 'function', undefined, { timeout: 60_000 });
    const opened = browser;
    return {
      errors,
      run: (options = {}) => tab.evaluate((o) => window.runSuite(o), options),
      async close() {
        await opened.close();
        await server.close();
      },
    };
  } catch (error) {
    await browser?.close();
    await server.close();
    throw error;
  }
}
