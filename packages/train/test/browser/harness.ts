/**
 * Runs the trainer inside headless Chromium with WebGPU on SwiftShader (the shared plumbing of
 * @diff-transformer/browser-test): bundles test/browser/entry.ts (the built packages) and serves it
 * from a localhost server. The page is not cross-origin isolated, so the CPU backend runs on one
 * thread there.
 */
import { fileURLToPath } from 'node:url';
import {
  bundlePage,
  collectMessages,
  launchChromium,
  pageHtml,
  serveFiles,
  type LocalServer,
} from '@diff-transformer/browser-test';
import type { Browser, Page } from 'playwright-core';

export { CHROMIUM, chromiumAvailable } from '@diff-transformer/browser-test';

function bundle(): Promise<string> {
  const dist = new URL('../../dist/index.js', import.meta.url);
  return bundlePage(new URL('./entry.ts', import.meta.url), {
    requireBuilt: dist,
    // The package itself, as an app resolves it: its built main entry.
    alias: { '@diff-transformer/train': fileURLToPath(dist) },
    // Node-only paths (Dawn's loader, worker_threads) are never reached in a page.
    external: ['node:*', 'webgpu'],
  });
}

export interface BrowserTrainer {
  readonly page: Page;
  /** Page errors and console errors seen so far. */
  readonly errors: string[];
  close(): Promise<void>;
}

export async function openBrowserTrainer(): Promise<BrowserTrainer> {
  const script = await bundle();
  const server: LocalServer = await serveFiles({
    '/': { type: 'text/html', body: pageHtml('diff-transformer training in a browser', '/page.js') },
    '/page.js': { type: 'text/javascript', body: script },
  });
  let browser: Browser | undefined;
  try {
    browser = await launchChromium({ webgpu: true });
    const page = await browser.newPage();
    const errors = collectMessages(page, { warnings: false });
    await page.goto(server.url);
    await page.waitForFunction(() => typeof window.trainInPage === 'function', undefined, { timeout: 60_000 });
    const opened = browser;
    return {
      page,
      errors,
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
