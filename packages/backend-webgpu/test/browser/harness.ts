/**
 * Runs the conformance suite inside headless Chromium with WebGPU on SwiftShader (the shared plumbing
 * of @diff-transformer/browser-test): bundles test/browser/entry.ts (the built packages, as an app
 * gets them) and serves it from a localhost server.
 */
import { bundlePage, openTestPage, pageHtml } from '@diff-transformer/browser-test';
import type { ConformanceReport } from '@diff-transformer/conformance';
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
  const tab = await openTestPage({
    files: {
      '/': { type: 'text/html', body: pageHtml('diff-transformer webgpu conformance', '/suite.js') },
      '/suite.js': { type: 'text/javascript', body: await bundle() },
    },
    webgpu: true,
    ready: 'runSuite',
  });
  return {
    errors: tab.messages,
    run: (options = {}) => tab.page.evaluate((o) => window.runSuite(o), options),
    close: tab.close,
  };
}
