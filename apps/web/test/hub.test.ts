/**
 * The page opens a model from the Hugging Face Hub by name, in headless Chromium, against a loopback
 * server that answers like the Hub (?endpoint=, a CDN on another origin, CORS as the Hub sends it):
 * ?model=owner/name at start, the Cache API serving a reload with no transfer, a corrupted file refused
 * with nothing cached, and the same tokens as Node's core on the same folder.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { disposeBackend, generate, setBackend } from '@diff-transformer/core';
import { loadModel, loadTokenizer } from '@diff-transformer/core/node';
import { type FakeHub, startFakeHub, tinyDiffLlamaFiles } from '@diff-transformer/fake-hub';
import '@diff-transformer/backend-cpu';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageState } from '../src/main.js';
import { CHROMIUM, chromiumAvailable, launch, openApp, screenshot, serveDist } from './harness.js';

// CI installs Debian's chromium (scripts/setup.sh); elsewhere a missing browser skips, loudly.
const required = process.env.CI === 'true' || process.env.CI === '1';
const run = chromiumAvailable() || required;
const PROMPT = 'The jury said';
const NEW_TOKENS = 8;

function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => (window as unknown as { difftx: { state: PageState } }).difftx.state);
}

async function idle(page: Page): Promise<PageState> {
  await page.waitForFunction(
    () => (window as unknown as { difftx: { state: PageState } }).difftx.state.busy === null,
    undefined,
    { timeout: 240_000 },
  );
  return pageState(page);
}

describe.runIf(run)(`a Hub model in the web app, headless Chromium (${CHROMIUM})`, () => {
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;
  let hub: FakeHub;
  const scratch = mkdtempSync(join(tmpdir(), 'difftx-web-hub-'));
  const local = join(scratch, 'tiny');

  beforeAll(async () => {
    hub = await startFakeHub();
    const files = await tinyDiffLlamaFiles();
    hub.addRepo('test/tiny', files);
    hub.addRepo('test/corrupted', await tinyDiffLlamaFiles());
    hub.corrupt('test/corrupted', 'model.safetensors');
    mkdirSync(local);
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(local, name), bytes);
    server = await serveDist();
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await hub?.close();
    await disposeBackend('cpu');
    rmSync(scratch, { recursive: true, force: true });
  });

  it('?model=owner/name loads it at start and generates what Node generates from the same folder', async () => {
    const url = `${server.url}?model=test/tiny&endpoint=${encodeURIComponent(hub.url)}`;
    const app = await openApp(browser, url);
    let state = await idle(app.page);
    expect(state.error).toBeNull();
    expect(state.models.diff?.source).toBe('hf:test/tiny@main');
    expect(state.models.diff?.tokenizer).toBe('tokenizer.json');
    expect(await app.page.textContent('#hub-status')).toContain('test/tiny: loaded');
    expect(hub.requests.some((r) => r.server === 'cdn' && r.method === 'GET')).toBe(true);

    await app.page.fill('#generate-prompt', PROMPT);
    await app.page.selectOption('#generate-slot', 'diff');
    await app.page.fill('#max-new-tokens', String(NEW_TOKENS));
    await app.page.check('#greedy');
    await app.page.click('#generate-button');
    await app.page.waitForFunction(
      () => (window as unknown as { difftx: { state: PageState } }).difftx.state.generation !== null,
      undefined,
      { timeout: 240_000 },
    );
    state = await idle(app.page);
    await setBackend('cpu');
    const model = await loadModel(local);
    const ids: number[] = [];
    const prompt = (await loadTokenizer(local))!.encode(PROMPT);
    for await (const id of generate(model, prompt, { maxNewTokens: NEW_TOKENS, greedy: true })) ids.push(id);
    model.dispose();
    expect(state.generation?.ids).toEqual(ids);
    await screenshot(app.page, 'hub-model', '#model-section');
    expect(app.messages).toEqual([]);

    // A reload reads the Cache API: the model info is asked again (main may have moved), no file is sent.
    const before = hub.requests.length;
    await app.page.reload();
    await app.page.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 240_000 });
    state = await idle(app.page);
    expect(state.models.diff?.source).toBe('hf:test/tiny@main');
    const again = hub.requests.slice(before);
    expect(again.filter((r) => r.path.includes('/resolve/') || r.server === 'cdn')).toEqual([]);
    expect(again.filter((r) => r.path.startsWith('/api/models/test/tiny/'))).toHaveLength(1);
    await app.page.close();
  });

  it('a corrupted file is refused by its checksum and nothing of it stays in the cache', async () => {
    const app = await openApp(browser, `${server.url}?endpoint=${encodeURIComponent(hub.url)}`);
    await app.page.fill('#hub-model', 'test/corrupted');
    await app.page.click('#load-hub');
    await app.page.waitForFunction(
      () => (window as unknown as { difftx: { state: PageState } }).difftx.state.error !== null,
      undefined,
      { timeout: 240_000 },
    );
    const state = await idle(app.page);
    expect(state.error).toMatch(
      /hf:test\/corrupted@main: model\.safetensors: its sha256 is [0-9a-f]{64}, the Hub lists/,
    );
    expect(state.models.diff?.source).not.toContain('corrupted');
    const cached = await app.page.evaluate(async () => {
      const cache = await caches.open('huggingface-hub');
      return (await cache.keys()).map((request) => request.url);
    });
    expect(cached.some((url) => url.includes('test/corrupted') && url.includes('model.safetensors'))).toBe(false);
    // The other files of that model are checked and kept (a retry fetches only what failed).
    expect(cached.some((url) => url.includes('test/corrupted') && url.endsWith('config.json'))).toBe(true);
    await app.page.close();
  });
});
