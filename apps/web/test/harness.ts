/**
 * Serves the built app (dist/) from localhost with the cross-origin isolation headers, as the README
 * says to host it, and drives headless Chromium with WebGPU on SwiftShader (the shared plumbing of
 * @diff-transformer/browser-test).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  collectMessages,
  ISOLATION_HEADERS,
  launchChromium,
  serveDirectory,
  type LocalServer,
} from '@diff-transformer/browser-test';
import type { Browser, Page } from 'playwright-core';

export { CHROMIUM, chromiumAvailable } from '@diff-transformer/browser-test';

export const DIST = fileURLToPath(new URL('../dist/', import.meta.url));
/** Screenshots of each view, written by the tests (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

/** A static server of dist/ on 127.0.0.1, every response cross-origin isolated. */
export function serveDist(): Promise<LocalServer> {
  if (!existsSync(join(DIST, 'index.html')))
    throw new Error('the browser tests serve the built app: run `pnpm build` first');
  return serveDirectory(DIST, ISOLATION_HEADERS);
}

export interface AppPage {
  readonly page: Page;
  /** Console errors and warnings, and uncaught page errors, seen so far. */
  readonly messages: string[];
}

export function launch(): Promise<Browser> {
  return launchChromium({ webgpu: true });
}

/** Opens the app and waits until its start (backend, built-in models, first maps) has finished. */
export async function openApp(browser: Browser, url: string): Promise<AppPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const messages = collectMessages(page, { warnings: true });
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
