/**
 * `--model hf:owner/name` end to end, as a user runs it, against a loopback server that answers like
 * the Hugging Face Hub (HF_ENDPOINT): generate downloads into HF_HUB_CACHE and gives what the same
 * folder on disk gives; offline runs read the cache; auth, not-found and offline errors are one line,
 * exit 1, no stack; the token shows nowhere; the progress bar shows bytes and a rate.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FakeHub, startFakeHub, tinyDiffLlamaFiles } from '@diff-transformer/fake-hub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadView, formatBytes } from '../src/hub-model.js';
import { ProgressLine } from '../src/progress-line.js';

const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));
const TOKEN = 'hf_CliSecretToken9876543210abcdefQRS';
const scratch = mkdtempSync(join(tmpdir(), 'difftx-hub-cli-'));
const local = join(scratch, 'local');
let hub: FakeHub;

beforeAll(async () => {
  hub = await startFakeHub({ token: TOKEN });
  const files = await tinyDiffLlamaFiles();
  hub.addRepo('test/tiny', files);
  hub.addRepo('test/gated', files, { gated: true });
  hub.addRepo('test/sharded', await tinyDiffLlamaFiles({ maxShardBytes: 20_000 }));
  mkdirSync(local);
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(local, name), bytes);
});
afterAll(async () => {
  await hub.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** difftx in a child process (asynchronously: the Hub answers from this process). */
function difftx(args: string[], env: Record<string, string | undefined> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, HF_HUB_OFFLINE: undefined, HF_TOKEN: undefined, HF_HOME: scratch, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const GENERATE = ['generate', '--prompt', 'The jury said', '--max-new-tokens', '6', '--greedy', '--json'];

describe('difftx --model hf:owner/name', () => {
  it('generate downloads the model into the Hugging Face cache and gives what the folder gives', async () => {
    const cache = join(scratch, 'cache-generate');
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_TOKEN: TOKEN };
    const fromHub = await difftx([...GENERATE, '--model', 'hf:test/tiny'], env);
    expect(fromHub.code, fromHub.stderr).toBe(0);
    const fromFolder = await difftx([...GENERATE, '--model', local]);
    expect(JSON.parse(fromHub.stdout).ids).toEqual(JSON.parse(fromFolder.stdout).ids);
    expect(fromHub.stderr).toMatch(/hf:test\/tiny: model\.safetensors [\d.]+ kB downloaded/);
    expect(fromHub.stderr).toMatch(
      /hf:test\/tiny: commit [0-9a-f]{12} in .*models--test--tiny\/snapshots\/[0-9a-f]{40}/,
    );
    for (const text of [fromHub.stdout, fromHub.stderr]) expect(text).not.toContain(TOKEN);
    // Offline, from the cache only (the endpoint is not even reachable).
    const offline = await difftx([...GENERATE, '--model', 'hf:test/tiny@main'], {
      HF_HUB_CACHE: cache,
      HF_ENDPOINT: 'http://127.0.0.1:9',
      HF_HUB_OFFLINE: '1',
    });
    expect(offline.code, offline.stderr).toBe(0);
    expect(JSON.parse(offline.stdout).ids).toEqual(JSON.parse(fromFolder.stdout).ids);
    expect(offline.stderr).toContain('(from the cache)');
  });

  it('inspect, logits and eval take hf: too; a sharded checkpoint downloads every shard', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(scratch, 'cache-commands') };
    const inspect = await difftx(['inspect', 'hf:test/sharded', '--json'], env);
    expect(inspect.code, inspect.stderr).toBe(0);
    const description = JSON.parse(inspect.stdout);
    expect(description.layout).toBe('diffllama');
    expect(description.files.length).toBeGreaterThan(2);
    const out = join(scratch, 'logits.safetensors');
    const logits = await difftx(['logits', '--model', 'hf:test/sharded', '--ids', '1,2,3', '--out', out], env);
    expect(logits.code, logits.stderr).toBe(0);
    const text = join(scratch, 'text.txt');
    writeFileSync(text, 'The jury said that the city had no evidence of irregularities. '.repeat(40));
    const evaluation = await difftx(
      ['eval', '--model', 'hf:test/tiny', '--data', text, '--seq-len', '8', '--json'],
      env,
    );
    expect(evaluation.code, evaluation.stderr).toBe(0);
  });

  it('errors are one line, exit 1, no stack: 401 names HF_TOKEN, 404 the repository and revision, offline what is missing', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(scratch, 'cache-errors') };
    const oneLine = (r: { code: number | null; stderr: string }, pattern: RegExp) => {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stderr).not.toContain(TOKEN);
    };
    oneLine(await difftx([...GENERATE, '--model', 'hf:test/gated'], env), /^difftx: .*401.*set HF_TOKEN/);
    oneLine(
      await difftx([...GENERATE, '--model', 'hf:test/gated'], { ...env, HF_TOKEN: `${TOKEN}x` }),
      /403.*A token was sent \(from HF_TOKEN\)/,
    );
    oneLine(
      await difftx([...GENERATE, '--model', 'hf:test/absent@v1'], { ...env, HF_TOKEN: TOKEN }),
      /repository test\/absent not found at revision v1/,
    );
    oneLine(
      await difftx([...GENERATE, '--model', 'hf:test/tiny'], { ...env, HF_HUB_OFFLINE: '1' }),
      /offline \(HF_HUB_OFFLINE is set\).*no snapshot of revision main/,
    );
    const usage = await difftx([...GENERATE, '--model', 'hf:../etc']);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/is not a Hub model id/);
  });
});

describe('the download bar', () => {
  it('shows the file, bytes of the model, a rate and the time left; whole lines for finished files', () => {
    const written: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      const view = new DownloadView('hf:o/n', new ProgressLine(true));
      const event = { repo: 'o/n', file: 'model.safetensors', total: 2_000_000_000, modelTotal: 2_000_010_000 };
      view.update({ ...event, status: 'downloading', loaded: 0, modelLoaded: 10_000 });
      const started = performance.now();
      while (performance.now() - started < 300);
      view.update({ ...event, status: 'downloading', loaded: 500_000_000, modelLoaded: 500_010_000 });
      view.update({ ...event, status: 'done', loaded: 2_000_000_000, modelLoaded: 2_000_010_000 });
    } finally {
      process.stderr.write = original;
    }
    const text = written.join('');
    expect(text).toMatch(
      /hf:o\/n downloading model\.safetensors \[=+>? *\] 500 MB \/ 2\.00 GB [\d.]+ [kMG]B\/s eta \d/,
    );
    expect(text).toContain('hf:o/n: model.safetensors 2.00 GB downloaded (2.00 GB this run)\n');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(2_780_000_000)).toBe('2.78 GB');
  });
});
