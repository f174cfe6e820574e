/**
 * Runs the backend inside headless Chromium (the shared plumbing of @diff-transformer/browser-test):
 * bundles test/browser/entry.ts and worker-entry.ts (the built packages, as an app gets them), and
 * serves each tab from a localhost server of its own, with or without cross-origin isolation (and a
 * Content-Security-Policy if asked).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import {
  bundlePage,
  collectMessages,
  ISOLATION_HEADERS,
  launchChromiumProfile,
  pageHtml,
  serveFiles,
} from '@diff-transformer/browser-test';
import type { Page } from 'playwright-core';

export { CHROMIUM, chromiumAvailable } from '@diff-transformer/browser-test';

/**
 * The bundles of the page and of its module worker, each one ES module with core, the suite and the backend
 * from their built dist/.
 */
export interface Bundles {
  readonly page: string;
  readonly worker: string;
}

export async function bundle(): Promise<Bundles> {
  const options = { requireBuilt: new URL('../../dist/index.js', import.meta.url) };
  const [page, worker] = await Promise.all([
    bundlePage(new URL('./entry.ts', import.meta.url), options),
    bundlePage(new URL('./worker-entry.ts', import.meta.url), options),
  ]);
  return { page, worker };
}

/** A localhost server of the page, its bundle and its worker's, every response with `headers`. */
function serve(bundles: Bundles, headers: OutgoingHttpHeaders) {
  return serveFiles(
    {
      '/': { type: 'text/html', body: pageHtml('diff-transformer cpu in a browser', '/suite.js') },
      '/suite.js': { type: 'text/javascript', body: bundles.page },
      // A worker loaded from a URL is cross-origin isolated only if its own response says so.
      '/worker.js': { type: 'text/javascript', body: bundles.worker },
    },
    headers,
  );
}

export interface BrowserPage {
  readonly page: Page;
  /** Console errors and warnings, and page errors, seen so far. */
  readonly messages: string[];
}

export interface PageOptions {
  /** Serve every response with the cross-origin isolation headers. */
  readonly isolated: boolean;
  /** A Content-Security-Policy for every response. */
  readonly csp?: string;
}

export interface Browser {
  /** Opens the page in a new tab, from a server of its own (an origin of its own). */
  open(options: PageOptions): Promise<BrowserPage>;
  close(): Promise<void>;
}

/** Starts Chromium on a fresh profile; each open() serves the bundle from a server of its own. */
export async function launchBrowser(): Promise<Browser> {
  const bundles = await bundle();
  const chromium = await launchChromiumProfile({ webgpu: false });
  const servers: Array<{ close(): Promise<void> }> = [];
  return {
    async open({ isolated, csp }) {
      const headers = { ...(isolated ? ISOLATION_HEADERS : {}), ...(csp ? { 'content-security-policy': csp } : {}) };
      const server = await serve(bundles, headers);
      servers.push(server);
      const page = await chromium.context.newPage();
      const messages = collectMessages(page, { warnings: true });
      await page.goto(server.url);
      await page.waitForFunction(() => typeof window.cpuSuite === 'function', undefined, { timeout: 60_000 });
      return { page, messages };
    },
    async close() {
      await chromium.close();
      await Promise.all(servers.map((server) => server.close()));
    },
  };
}
