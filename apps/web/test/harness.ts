/**
 * Serves the built app (dist/) from localhost with the cross-origin isolation headers, as the README
 * says to host it, and drives Debian's /usr/bin/chromium headless through playwright-core, with WebGPU on
 * SwiftShader (a CPU implementation of Vulkan). No browser is downloaded.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.DIFFTX_CHROMIUM ?? '/usr/bin/chromium';
export const DIST = fileURLToPath(new URL('../dist/', import.meta.url));
/** Screenshots of each view, written by the tests (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

/** WebGPU on SwiftShader in headless Chromium, and no network chatter on a closed machine. */
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

export const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
  '.wasm': 'application/wasm',
};

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

/** A static server of dist/ on 127.0.0.1, every response cross-origin isolated. */
export async function serveDist(): Promise<{ url: string; close(): Promise<void> }> {
  if (!existsSync(join(DIST, 'index.html')))
    throw new Error('the browser tests serve the built app: run `pnpm build` first');
  const server: Server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname));
    const file = join(DIST, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(DIST) || !existsSync(file)) {
      response.writeHead(404, ISOLATION_HEADERS).end();
      return;
    }
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    response.writeHead(200, { ...ISOLATION_HEADERS, 'content-type': type }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    // localhost is a secure context, which WebGPU and cross-origin isolation need.
    url: `http://localhost:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface AppPage {
  readonly page: Page;
  /** Console errors and warnings, and uncaught page errors, seen so far. */
  readonly messages: string[];
}

export async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 60_000 });
}

/** Opens the app and waits until its start (backend, built-in models, first maps) has finished. */
export async function openApp(browser: Browser, url: string): Promise<AppPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const messages: string[] = [];
  page.on('pageerror', (error) => messages.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning')
      messages.push(`console ${message.type()}: ${message.text()}`);
  });
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 240_000 });
  return { page, messages };
}

export async function screenshot(page: Page, name: string, selector?: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  if (selector) await page.locator(selector).screenshot({ path });
  else await page.screenshot({ path, fullPage: true });
  return path;
}
