/**
 * Runs the trainer inside headless Chromium: bundles test/browser/entry.ts with esbuild (the built
 * packages), serves it from a localhost HTTP server made here, and drives Debian's /usr/bin/chromium
 * through playwright-core with WebGPU on SwiftShader (no browser is downloaded). The page is not
 * cross-origin isolated, so the CPU backend runs on one thread there.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.DIFFTX_CHROMIUM ?? '/usr/bin/chromium';

const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

async function bundle(): Promise<string> {
  const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
  if (!existsSync(dist)) throw new Error('the browser test bundles the built package: run `pnpm build` first');
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./entry.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    // The package itself, as an app resolves it: its built main entry.
    alias: { '@diff-transformer/train': dist },
    // Node-only paths (Dawn's loader, worker_threads) are never reached in a page.
    external: ['node:*', 'webgpu'],
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

export interface BrowserTrainer {
  readonly page: Page;
  /** Page errors and console errors seen so far. */
  readonly errors: string[];
  close(): Promise<void>;
}

export async function openBrowserTrainer(): Promise<BrowserTrainer> {
  const script = await bundle();
  const html =
    '<!doctype html><meta charset="utf-8"><title>diff-transformer training in a browser</title>' +
    '<link rel="icon" href="data:,"><script type="module" src="/page.js"></script>';
  const server: Server = createServer((request, response) => {
    if (request.url === '/page.js') response.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else if (request.url === '/') response.writeHead(200, { 'content-type': 'text/html' }).end(html);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      timeout: 60_000,
    });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    // localhost is a secure context, which WebGPU requires.
    await page.goto(`http://localhost:${port}/`);
    await page.waitForFunction(() => typeof window.trainInPage === 'function', undefined, { timeout: 60_000 });
    const opened = browser;
    return {
      page,
      errors,
      async close() {
        await opened.close();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  } catch (error) {
    await browser?.close();
    server.close();
    throw error;
  }
}
