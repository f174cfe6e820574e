/**
 * Runs the conformance suite inside headless Chromium: bundles test/browser/entry.ts with esbuild,
 * serves it from a localhost HTTP server made here, and drives Debian's /usr/bin/chromium through
 * playwright-core with WebGPU on SwiftShader (no browser is downloaded).
 */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import type { ConformanceReport } from '@diff-transformer/conformance';
import type { SuiteOptions } from './entry.js';

export const CHROMIUM = process.env.DIFFTX_CHROMIUM ?? '/usr/bin/chromium';

/** The flags that give headless Chromium WebGPU on SwiftShader (a CPU implementation of Vulkan). */
export const CHROMIUM_FLAGS = [
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

/**
 * The page bundle: one ES module with core, the suite and the backend as a browser app gets them
 * (their built dist/, through the packages' exports; `pnpm build` runs before the tests).
 */
export async function bundle(): Promise<string> {
  if (!existsSync(fileURLToPath(new URL('../../dist/index.js', import.meta.url)))) {
    throw new Error('the browser test bundles the built package: run `pnpm build` first');
  }
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./entry.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    // The Node-only loader is never reached in a page (navigator.gpu exists): leave its imports alone.
    external: ['node:*', 'webgpu'],
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

export interface BrowserSuite {
  run(options?: SuiteOptions): Promise<ConformanceReport | { unavailable: string }>;
  close(): Promise<void>;
  /** Console errors and page errors seen so far. */
  readonly errors: string[];
}

export async function openBrowserSuite(): Promise<BrowserSuite> {
  const script = await bundle();
  const page =
    '<!doctype html><meta charset="utf-8"><title>diff-transformer webgpu conformance</title>' +
    '<link rel="icon" href="data:,"><script type="module" src="/suite.js"></script>';
  const server: Server = createServer((request, response) => {
    if (request.url === '/suite.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    } else if (request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html' }).end(page);
    } else {
      response.writeHead(404).end();
    }
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
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
    tab.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    // localhost is a secure context, which WebGPU requires.
    await tab.goto(`http://localhost:${port}/`);
    await tab.waitForFunction(() => typeof window.runSuite === 'function', undefined, { timeout: 60_000 });
    const opened = browser;
    return {
      errors,
      run: (options = {}) => tab.evaluate((o) => window.runSuite(o), options),
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
