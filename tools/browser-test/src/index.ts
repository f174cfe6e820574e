/**
 * The headless-Chromium plumbing the browser tests share (backend-cpu, backend-webgpu, train and the
 * web app): Debian's /usr/bin/chromium (or $DIFFTX_CHROMIUM) driven through playwright-core, which
 * downloads no browser; page bundles made by esbuild from the built packages, as an app gets them;
 * localhost servers (a secure context, which WebGPU and cross-origin isolation need); and the page's
 * errors, collected for the tests to assert on. Each test keeps only what is its own: its entry, its
 * page's globals, the headers it serves with.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.DIFFTX_CHROMIUM ?? '/usr/bin/chromium';

/** Whether the browser is installed (scripts/setup.sh installs Debian's chromium). */
export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

/** The headers that make a page cross-origin isolated (SharedArrayBuffer, shared WebAssembly memory). */
export const ISOLATION_HEADERS: OutgoingHttpHeaders = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  // Lets the resource be embedded by a require-corp document of this origin (the default would too).
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * Chromium's flags: no network chatter on a closed machine, and with `webgpu`, WebGPU on SwiftShader
 * (a CPU implementation of Vulkan), so no GPU is needed.
 */
export function chromiumFlags(options: { webgpu: boolean }): string[] {
  const webgpu = options.webgpu
    ? [
        '--enable-unsafe-webgpu',
        '--enable-features=Vulkan',
        '--use-webgpu-adapter=swiftshader',
        '--disable-gpu-sandbox',
      ]
    : [];
  return [
    ...webgpu,
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ];
}

/** Starts headless Chromium (playwright's own timeout is 30 s; a loaded machine needs more). */
export function launchChromium(options: { webgpu: boolean }): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumFlags(options), timeout: 60_000 });
}

/** Headless Chromium on a fresh profile of its own, removed again by close(). */
export async function launchChromiumProfile(options: {
  webgpu: boolean;
}): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'difftx-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: chromiumFlags(options),
      timeout: 60_000,
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * One ES module of a test page: `entry` bundled with what it imports. The packages it imports come
 * from their built dist/ through their exports, as an app gets them, so `requireBuilt` (a package's
 * dist entry) must exist: the message says to run `pnpm build`. `external`: imports left alone (Node's
 * modules, which a page never reaches); `alias`: imports resolved elsewhere.
 */
export async function bundlePage(
  entry: URL,
  options: { requireBuilt: URL; external?: string[]; alias?: Record<string, string> },
): Promise<string> {
  if (!existsSync(fileURLToPath(options.requireBuilt))) {
    throw new Error('the browser test bundles the built package: run `pnpm build` first');
  }
  const result = await build({
    entryPoints: [fileURLToPath(entry)],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    external: options.external ?? ['node:*'],
    alias: options.alias,
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

/** A page that loads one module script. */
export function pageHtml(title: string, script: string): string {
  return (
    `<!doctype html><meta charset="utf-8"><title>${title}</title>` +
    `<link rel="icon" href="data:,"><script type="module" src="${script}"></script>`
  );
}

export interface LocalServer {
  /** http://localhost:PORT/ (localhost is a secure context, which WebGPU and isolation require). */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves what `lookup` finds for a path (else 404) on 127.0.0.1, every response with `headers`. */
async function serve(
  lookup: (path: string) => { type: string; body: string | Uint8Array } | null,
  headers: OutgoingHttpHeaders,
): Promise<LocalServer> {
  const server: Server = createServer((request, response) => {
    const file = lookup(new URL(request.url ?? '/', 'http://localhost').pathname);
    if (file) response.writeHead(200, { ...headers, 'content-type': file.type }).end(file.body);
    else response.writeHead(404, headers).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A localhost server of fixed files (path → content type and body). */
export function serveFiles(
  files: Record<string, { type: string; body: string | Uint8Array }>,
  headers: OutgoingHttpHeaders = {},
): Promise<LocalServer> {
  return serve((path) => files[path] ?? null, headers);
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
  '.wasm': 'application/wasm',
};

/** A localhost server of a folder (a built app); `/` and folders serve their index.html. */
export function serveDirectory(root: string, headers: OutgoingHttpHeaders = {}): Promise<LocalServer> {
  const base = normalize(root.endsWith(sep) ? root : `${root}${sep}`);
  return serve((path) => {
    const relative = normalize(decodeURIComponent(path));
    const file = join(base, relative.endsWith('/') ? `${relative}index.html` : relative);
    if (!file.startsWith(base) || !existsSync(file)) return null;
    return { type: TYPES[extname(file)] ?? 'application/octet-stream', body: readFileSync(file) };
  }, headers);
}

/**
 * The page's uncaught errors and console errors (and warnings, with `warnings`) from now on, as
 * 'page error: …' and 'console error: …' lines, for a test to expect none or the ones it provoked.
 */
export function collectMessages(page: Page, options: { warnings: boolean }): string[] {
  const messages: string[] = [];
  page.on('pageerror', (error) => messages.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const type = message.type();
    if (type === 'error' || (options.warnings && type === 'warning'))
      messages.push(`console ${type}: ${message.text()}`);
  });
  return messages;
}

export interface TestPage {
  readonly page: Page;
  /** What collectMessages gathers: page errors and console errors (and warnings, if asked). */
  readonly messages: string[];
  /** Closes the browser and the server. */
  close(): Promise<void>;
}

/**
 * Serves `files` from localhost, opens `/` in a headless Chromium of its own and waits until the page
 * has defined the function `ready` (its entry's handle for the test).
 */
export async function openTestPage(options: {
  files: Record<string, { type: string; body: string | Uint8Array }>;
  webgpu: boolean;
  ready: string;
  warnings?: boolean;
}): Promise<TestPage> {
  const server = await serveFiles(options.files);
  let browser: Browser | undefined;
  try {
    browser = await launchChromium({ webgpu: options.webgpu });
    const page = await browser.newPage();
    const messages = collectMessages(page, { warnings: options.warnings ?? false });
    await page.goto(server.url);
    await page.waitForFunction(
      (name) => typeof (window as unknown as Record<string, unknown>)[name] === 'function',
      options.ready,
      { timeout: 60_000 },
    );
    const opened = browser;
    return {
      page,
      messages,
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
