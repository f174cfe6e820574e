/**
 * Runs the backend inside headless Chromium: bundles test/browser/entry.ts and worker-entry.ts with
 * esbuild (the built packages, as an app gets them), serves it from a localhost HTTP server made here, with or
 * without cross-origin isolation (and a Content-Security-Policy if asked), and drives Debian's /usr/bin/chromium
 * through playwright-core (no browser is downloaded).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.DIFFTX_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The headers that make a page cross-origin isolated (SharedArrayBuffer, shared WebAssembly memory). */
export const ISOLATION_HEADERS: OutgoingHttpHeaders = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  // Lets the resource be embedded by a require-corp document of this origin (the default would too).
  'cross-origin-resource-policy': 'same-origin',
};

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

/**
 * The bundles of the page and of its module worker, each one ES module with core, the suite and the backend
 * from their built dist/.
 */
export interface Bundles {
  readonly page: string;
  readonly worker: string;
}

export async function bundle(): Promise<Bundles> {
  if (!existsSync(fileURLToPath(new URL('../../dist/index.js', import.meta.url)))) {
    throw new Error('the browser test bundles the built package: run `pnpm build` first');
  }
  const one = async (entry: string): Promise<string> => {
    const result = await build({
      entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      // Node's modules are imported through a variable and never reached in a browser.
      external: ['node:*'],
      logLevel: 'silent',
    });
    return result.outputFiles[0].text;
  };
  const [page, worker] = await Promise.all([one('./entry.ts'), one('./worker-entry.ts')]);
  return { page, worker };
}

/** A localhost server of the page, its bundle and its worker's, every response with `headers`. */
async function serve(bundles: Bundles, headers: OutgoingHttpHeaders): Promise<{ url: string; close(): Promise<void> }> {
  const page =
    '<!doctype html><meta charset="utf-8"><title>diff-transformer cpu in a browser</title>' +
    '<link rel="icon" href="data:,">' +
    '<script type="module" src="/suite.js"></script>';
  const files: Record<string, [string, string]> = {
    '/': ['text/html', page],
    '/suite.js': ['text/javascript', bundles.page],
    // A worker loaded from a URL is cross-origin isolated only if its own response says so.
    '/worker.js': ['text/javascript', bundles.worker],
  };
  const server: Server = createServer((request, response) => {
    const file = files[request.url ?? ''];
    if (file) response.writeHead(200, { ...headers, 'content-type': file[0] }).end(file[1]);
    else response.writeHead(404, headers).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    // localhost is a secure context, which cross-origin isolation requires.
    url: `http://localhost:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
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
  const profile = mkdtempSync(join(tmpdir(), 'difftx-cpu-chromium-'));
  const servers: Array<{ close(): Promise<void> }> = [];
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      timeout: 60_000,
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const opened = context;
  return {
    async open({ isolated, csp }) {
      const headers = { ...(isolated ? ISOLATION_HEADERS : {}), ...(csp ? { 'content-security-policy': csp } : {}) };
      const server = await serve(bundles, headers);
      servers.push(server);
      const page = await opened.newPage();
      const messages: string[] = [];
      page.on('pageerror', (error) => messages.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning')
          messages.push(`console ${message.type()}: ${message.text()}`);
      });
      await page.goto(server.url);
      await page.waitForFunction(() => typeof window.cpuSuite === 'function', undefined, { timeout: 60_000 });
      return { page, messages };
    },
    async close() {
      await opened.close();
      await Promise.all(servers.map((server) => server.close()));
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
