/**
 * Runs the trainer inside headless Chromium with WebGPU on SwiftShader (the shared plumbing of
 * @diff-transformer/browser-test): bundles test/browser/entry.ts (the built packages) and serves it
 * from a localhost server. The page is not cross-origin isolated, so the CPU backend runs on one
 * thread there.
 */
import { fileURLToPath } from 'node:url';
import { bundlePage, openTestPage, pageHtml, type TestPage } from '@diff-transformer/browser-test';

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

/** The page (`page`), its page errors and console errors (`messages`), and `close()`. */
export type BrowserTrainer = TestPage;

export async function openBrowserTrainer(): Promise<BrowserTrainer> {
  return openTestPage({
    files: {
      '/': { type: 'text/html', body: pageHtml('diff-transformer training in a browser', '/page.js') },
      '/page.js': { type: 'text/javascript', body: await bundle() },
    },
    webgpu: true,
    ready: 'trainInPage',
  });
}
