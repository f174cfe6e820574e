/**
 * snapshotDownload and fromPretrained against a loopback server that answers as the Hub does: the
 * Hugging Face cache layout, resume after a dropped connection, checksums, auth and not-found errors,
 * offline use, refused paths, two processes at once, and a token that never shows.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate, setBackend } from '@diff-transformer/core';
import { loadModel, loadTokenizer } from '@diff-transformer/core/node';
import { type FakeHub, startFakeHub, tinyDiffLlamaFiles } from '@diff-transformer/fake-hub';
import {
  type DownloadProgress,
  fromPretrained,
  HubAuthError,
  HubChecksumError,
  HubNotFoundError,
  HubOfflineError,
  HubRequestError,
  HubUnsafePathError,
  type SnapshotOptions,
  snapshotDownload,
} from '@diff-transformer/hub/node';
import '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TOKEN = 'hf_FakeSecretToken0123456789abcdefXYZ';
const scratch = mkdtempSync(join(tmpdir(), 'difftx-hub-'));
let hub: FakeHub;
let files: Record<string, Uint8Array>;
let sharded: Record<string, Uint8Array>;
let commit: string;
/** Everything the client said: error messages, progress events, notices; none may hold the token. */
const said: string[] = [];

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const freshCache = () => mkdtempSync(join(scratch, 'cache-'));

beforeAll(async () => {
  await setBackend('cpu');
  hub = await startFakeHub({ token: TOKEN });
  files = await tinyDiffLlamaFiles();
  sharded = await tinyDiffLlamaFiles({ maxShardBytes: 20_000 });
  commit = hub.addRepo('test/tiny', files);
  hub.addRepo('test/sharded', sharded);
  hub.addRepo('test/gated', files, { gated: true });
});
afterAll(async () => {
  await hub.close();
  rmSync(scratch, { recursive: true, force: true });
});

function options(cacheDir: string, extra: SnapshotOptions = {}): SnapshotOptions {
  return {
    cacheDir,
    endpoint: hub.url,
    token: null,
    retryDelayMs: 5,
    progress: (p) => said.push(JSON.stringify(p)),
    notice: (line) => said.push(line),
    ...extra,
  };
}

/** The rejection of `promise`, its message kept for the token check. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    said.push(String((error as Error).message), String((error as Error).stack));
    return error as Error;
  }
  throw new Error('expected a failure');
}

const storage = (cacheDir: string, repo = 'test/tiny') => join(cacheDir, `models--${repo.replace('/', '--')}`);

describe('snapshotDownload', () => {
  it('lays files out as huggingface_hub does: blobs by sha256 or git blob id, relative links, refs', async () => {
    const cacheDir = freshCache();
    const events: DownloadProgress[] = [];
    const snapshot = await snapshotDownload('test/tiny', options(cacheDir, { progress: (p) => events.push(p) }));
    const root = storage(cacheDir);
    expect(snapshot.commit).toBe(commit);
    expect(snapshot.path).toBe(join(root, 'snapshots', commit));
    expect(readFileSync(join(root, 'refs', 'main'), 'utf8')).toBe(commit);
    expect(new Set(snapshot.files)).toEqual(new Set(Object.keys(files)));
    for (const [name, bytes] of Object.entries(files)) {
      const link = join(snapshot.path, name);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      const target = readlinkSync(link);
      const blob = name.endsWith('.safetensors')
        ? sha256(bytes)
        : createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
      expect(target).toBe(`../../blobs/${blob}`);
      expect(readFileSync(link)).toEqual(Buffer.from(bytes));
    }
    expect(readdirSync(join(root, 'blobs')).some((n) => n.endsWith('.incomplete'))).toBe(false);
    const last = events.at(-1)!;
    expect(last.modelLoaded).toBe(last.modelTotal);
    expect(last.modelTotal).toBe(Object.values(files).reduce((n, b) => n + b.length, 0));
  });

  it('a second call finds everything cached and transfers no file', async () => {
    const cacheDir = freshCache();
    await snapshotDownload('test/tiny', options(cacheDir));
    const before = hub.requests.length;
    const events: DownloadProgress[] = [];
    await snapshotDownload('test/tiny', options(cacheDir, { progress: (p) => events.push(p) }));
    const after = hub.requests.slice(before);
    expect(after.map((r) => r.path)).toEqual(['/api/models/test/tiny/revision/main']);
    expect(events.every((e) => e.status === 'cached')).toBe(true);
  });

  it('downloads every shard a sharded checkpoint lists', async () => {
    const cacheDir = freshCache();
    const shards = Object.keys(sharded).filter((n) => /^model-\d+-of-\d+\.safetensors$/.test(n));
    expect(shards.length).toBeGreaterThan(2);
    const snapshot = await snapshotDownload('test/sharded', options(cacheDir));
    for (const shard of shards) {
      expect(readFileSync(join(snapshot.path, shard))).toEqual(Buffer.from(sharded[shard]));
      expect(hub.requests.some((r) => r.server === 'cdn' && r.path.endsWith(`/${sha256(sharded[shard])}`))).toBe(true);
    }
    expect(snapshot.files).toContain('model.safetensors.index.json');
    const model = await loadModel(snapshot.path);
    expect(model.config.vocabSize).toBe(268);
    model.dispose();
  });

  it('resumes a download that broke off half-way with a Range request, in the next run', async () => {
    const cacheDir = freshCache();
    const weights = files['model.safetensors'];
    const half = weights.length >> 1;
    hub.dropAfter('test/tiny', 'model.safetensors', half);
    const error = await failure(snapshotDownload('test/tiny', options(cacheDir, { retries: 0 })));
    expect(error).toBeInstanceOf(HubRequestError);
    expect(error.message).toMatch(
      /model\.safetensors: the transfer broke off at \d+ of \d+ bytes.*run again to resume/,
    );
    const blob = join(storage(cacheDir), 'blobs', sha256(weights));
    // What arrived before the drop is kept (the client may not have read the last bytes sent).
    const kept = statSync(`${blob}.incomplete`).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(half);
    // Nothing is in the snapshot until every file is in.
    expect(existsSync(join(storage(cacheDir), 'snapshots'))).toBe(false);
    const before = hub.requests.length;
    const snapshot = await snapshotDownload('test/tiny', options(cacheDir, { retries: 0 }));
    const cdn = hub.requests.slice(before).filter((r) => r.server === 'cdn');
    expect(cdn.map((r) => r.range)).toEqual([`bytes=${kept}-`]);
    expect(readFileSync(join(snapshot.path, 'model.safetensors'))).toEqual(Buffer.from(weights));
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
  });

  it('resumes within one call when the connection drops (retries, as huggingface_hub does)', async () => {
    const cacheDir = freshCache();
    const weights = files['model.safetensors'];
    hub.dropAfter('test/tiny', 'model.safetensors', 1000, 2);
    const before = hub.requests.length;
    const snapshot = await snapshotDownload('test/tiny', options(cacheDir));
    const ranges = hub.requests
      .slice(before)
      .filter((r) => r.server === 'cdn')
      .map((r) => r.range);
    expect(ranges).toEqual([null, 'bytes=1000-', 'bytes=2000-']);
    expect(sha256(readFileSync(join(snapshot.path, 'model.safetensors')))).toBe(sha256(weights));
  });

  it('a whole file left before its rename is checked and kept without a transfer', async () => {
    const cacheDir = freshCache();
    const weights = files['model.safetensors'];
    const blobs = join(storage(cacheDir), 'blobs');
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, `${sha256(weights)}.incomplete`), weights);
    const before = hub.requests.length;
    const snapshot = await snapshotDownload('test/tiny', options(cacheDir));
    expect(hub.requests.slice(before).filter((r) => r.server === 'cdn')).toEqual([]);
    expect(readFileSync(join(snapshot.path, 'model.safetensors'))).toEqual(Buffer.from(weights));
  });

  it("stops before the body when the Hub's X-Linked-Etag differs from the model info's sha256", async () => {
    const cacheDir = freshCache();
    const lying: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!response.headers.has('x-linked-etag')) return response;
      const headers = new Headers(response.headers);
      headers.set('x-linked-etag', `"${'0'.repeat(64)}"`);
      return new Response(null, { status: response.status, headers });
    };
    const error = await failure(snapshotDownload('test/tiny', options(cacheDir, { fetch: lying })));
    expect(error).toBeInstanceOf(HubChecksumError);
    expect(error.message).toMatch(/model\.safetensors: the Hub serves etag 0{64}, its model info lists sha256/);
  });

  it('refuses a corrupted file with a typed error and keeps nothing of it', async () => {
    const cacheDir = freshCache();
    const corrupted = await tinyDiffLlamaFiles();
    hub.addRepo('test/corrupted', corrupted);
    hub.corrupt('test/corrupted', 'model.safetensors');
    const error = await failure(snapshotDownload('test/corrupted', options(cacheDir)));
    expect(error).toBeInstanceOf(HubChecksumError);
    expect(error.message).toMatch(/model\.safetensors: its sha256 is [0-9a-f]{64}, the Hub lists [0-9a-f]{64}/);
    const root = storage(cacheDir, 'test/corrupted');
    expect(existsSync(join(root, 'snapshots'))).toBe(false);
    expect(existsSync(join(root, 'refs'))).toBe(false);
    const blobs = readdirSync(join(root, 'blobs'));
    expect(blobs.some((n) => n.startsWith(sha256(corrupted['model.safetensors'])))).toBe(false);
  });

  it('a corrupted plain file (git blob id) is refused too', async () => {
    const cacheDir = freshCache();
    hub.addRepo('test/bad-config', files);
    hub.corrupt('test/bad-config', 'config.json');
    const error = await failure(snapshotDownload('test/bad-config', options(cacheDir)));
    expect(error).toBeInstanceOf(HubChecksumError);
    expect(error.message).toMatch(/config\.json: its git-sha1 is/);
  });

  it('401 and 403 name HF_TOKEN and whether a token was sent; the right token opens the gate', async () => {
    const cacheDir = freshCache();
    const anonymous = await failure(snapshotDownload('test/gated', options(cacheDir)));
    expect(anonymous).toBeInstanceOf(HubAuthError);
    expect((anonymous as HubAuthError).status).toBe(401);
    expect(anonymous.message).toMatch(/401.*No token was sent: set HF_TOKEN/s);
    const wrong = await failure(snapshotDownload('test/gated', options(cacheDir, { token: `${TOKEN}-wrong` })));
    expect((wrong as HubAuthError).status).toBe(403);
    expect(wrong.message).toMatch(/403.*A token was sent \(from token option\) and it does not give access/s);
    const before = hub.requests.length;
    const snapshot = await snapshotDownload('test/gated', options(cacheDir, { token: TOKEN }));
    expect(readdirSync(snapshot.path).length).toBe(Object.keys(files).length);
    const seen = hub.requests.slice(before);
    expect(seen.filter((r) => r.server === 'hub').every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    // The CDN is another origin: the token never goes there.
    expect(seen.filter((r) => r.server === 'cdn').every((r) => r.authorization === null)).toBe(true);
  });

  it('404 names the repository and the revision', async () => {
    const cacheDir = freshCache();
    const repo = await failure(snapshotDownload('test/missing', options(cacheDir, { token: TOKEN })));
    expect(repo).toBeInstanceOf(HubNotFoundError);
    expect(repo.message).toMatch(
      /repository test\/missing not found at revision main on http:\/\/127\.0\.0\.1:\d+ \(404/,
    );
    const anonymous = await failure(snapshotDownload('test/missing@v2', options(cacheDir)));
    expect(anonymous.message).toMatch(/test\/missing not found at revision v2 .*\(401.*set HF_TOKEN/);
    const revision = await failure(snapshotDownload('test/tiny', options(cacheDir, { revision: 'no-such-branch' })));
    expect(revision).toBeInstanceOf(HubNotFoundError);
    expect(revision.message).toMatch(/revision "no-such-branch" not found in test\/tiny/);
  });

  it('offline, finds the cached snapshot without a request; names what a cache lacks', async () => {
    const cacheDir = freshCache();
    const online = await snapshotDownload('test/sharded', options(cacheDir));
    const before = hub.requests.length;
    const offline = await snapshotDownload('test/sharded', options(cacheDir, { offline: true }));
    expect(offline).toEqual(online);
    expect(hub.requests.length).toBe(before);
    // HF_HUB_OFFLINE=1 as huggingface_hub reads it.
    process.env.HF_HUB_OFFLINE = '1';
    try {
      expect((await snapshotDownload('test/sharded', options(cacheDir))).path).toBe(online.path);
      const empty = await failure(snapshotDownload('test/tiny', options(freshCache())));
      expect(empty).toBeInstanceOf(HubOfflineError);
      expect(empty.message).toMatch(/offline \(HF_HUB_OFFLINE is set\).*no snapshot of revision main/);
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    const shard = online.files.find((n) => n.startsWith('model-00002'))!;
    unlinkSync(join(online.path, shard));
    const lacking = await failure(snapshotDownload('test/sharded', options(cacheDir, { offline: true })));
    expect(lacking).toBeInstanceOf(HubOfflineError);
    expect((lacking as HubOfflineError).missing).toEqual([shard]);
    expect(lacking.message).toContain(`lacks ${shard}`);
  });

  it('uses the cached snapshot when the Hub cannot be reached, and says so', async () => {
    const cacheDir = freshCache();
    await snapshotDownload('test/tiny', options(cacheDir));
    const notes: string[] = [];
    const closed = 'http://127.0.0.1:9';
    const snapshot = await snapshotDownload(
      'test/tiny',
      options(cacheDir, { endpoint: closed, notice: (n) => notes.push(n) }),
    );
    expect(snapshot.commit).toBe(commit);
    expect(notes[0]).toMatch(/could not reach http:\/\/127\.0\.0\.1:9.*using the cached snapshot/);
    const nothing = await failure(snapshotDownload('test/tiny', options(freshCache(), { endpoint: closed })));
    expect(nothing).toBeInstanceOf(HubRequestError);
  });

  it('refuses shard names that would leave the snapshot folder, and cached links that lead out', async () => {
    for (const shard of ['../evil.safetensors', '/tmp/evil.safetensors', 'sub/../../evil.safetensors', '..']) {
      const repo = `test/traversal-${sha256(new TextEncoder().encode(shard)).slice(0, 8)}`;
      const index = JSON.stringify({ metadata: {}, weight_map: { 'model.embed_tokens.weight': shard } });
      hub.addRepo(repo, { 'config.json': files['config.json'], 'model.safetensors.index.json': index });
      const cacheDir = freshCache();
      const error = await failure(snapshotDownload(repo, options(cacheDir)));
      expect(error).toBeInstanceOf(HubUnsafePathError);
      expect(error.message).toContain(`refused ${JSON.stringify(shard)}`);
      expect(existsSync(join(storage(cacheDir, repo), 'snapshots'))).toBe(false);
      expect(existsSync(join(cacheDir, 'evil.safetensors'))).toBe(false);
    }
    // The commit and the blob names become paths too: only hex digests are taken from the server.
    const info =
      (body: object): typeof fetch =>
      async () =>
        new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } });
    const sibling = { rfilename: 'config.json', size: 2, blobId: 'a'.repeat(40) };
    for (const body of [
      { sha: '../../../../tmp/evil', siblings: [sibling] },
      { sha: 'b'.repeat(40), siblings: [{ ...sibling, lfs: { sha256: '../../evil', size: 2 } }] },
    ]) {
      const error = await failure(snapshotDownload('test/tiny', options(freshCache(), { fetch: info(body) })));
      expect(error).toBeInstanceOf(HubRequestError);
      expect(error.message).toMatch(
        /the model info is not what the Hub sends: (no 40-hex "sha"|config\.json: "lfs\.sha256" is not 64 hex)/,
      );
    }
    // A cache someone else wrote: a snapshot entry linking outside the repository's blobs.
    const cacheDir = freshCache();
    const snapshot = await snapshotDownload('test/tiny', options(cacheDir));
    const outside = join(scratch, 'outside.json');
    writeFileSync(outside, '{}');
    unlinkSync(join(snapshot.path, 'config.json'));
    symlinkSync(outside, join(snapshot.path, 'config.json'));
    const error = await failure(snapshotDownload('test/tiny', options(cacheDir, { offline: true })));
    expect(error).toBeInstanceOf(HubUnsafePathError);
    expect(error.message).toMatch(/leads to .*outside\.json, outside/);
  });

  it('two processes downloading the same model at once end with one good copy', async () => {
    const cacheDir = freshCache();
    const repo = 'test/concurrent';
    const concurrent = await tinyDiffLlamaFiles();
    hub.addRepo(repo, concurrent);
    // Slow enough that the second process arrives while the first is still receiving.
    hub.throttle(repo, 'model.safetensors', 4096, 15);
    const entry = fileURLToPath(new URL('../dist/node.js', import.meta.url));
    const script = join(scratch, 'download.mjs');
    writeFileSync(
      script,
      `import { snapshotDownload } from ${JSON.stringify(entry)};\n` +
        `const s = await snapshotDownload(${JSON.stringify(repo)}, { cacheDir: process.argv[2], endpoint: process.argv[3], token: null });\n` +
        'process.stdout.write(s.path);\n',
    );
    const before = hub.requests.length;
    const run = () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, [script, cacheDir, hub.url]);
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => resolve({ code, out, err }));
      });
    const results = await Promise.all([run(), run()]);
    for (const r of results) expect(r, r.err).toMatchObject({ code: 0 });
    expect(results[0].out).toBe(results[1].out);
    const weights = concurrent['model.safetensors'];
    const transfers = hub.requests.slice(before).filter((r) => r.path.endsWith(`/${sha256(weights)}`));
    expect(transfers).toHaveLength(1);
    expect(sha256(readFileSync(join(results[0].out, 'model.safetensors')))).toBe(sha256(weights));
    const root = storage(cacheDir, repo);
    expect(readdirSync(join(root, 'blobs')).filter((n) => !/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(n))).toEqual([]);
    expect(readdirSync(join(cacheDir, '.locks', `models--${repo.replace('/', '--')}`))).toEqual([]);
  });
});

describe('fromPretrained', () => {
  it('gives the model and tokenizer the folder gives', async () => {
    const cacheDir = freshCache();
    const { model, tokenizer, snapshot } = await fromPretrained('hf:test/tiny', options(cacheDir));
    const local = join(scratch, 'local-copy');
    mkdirSync(local);
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(local, name), bytes);
    const reference = await loadModel(local);
    const prompt = (await loadTokenizer(local))!.encode('The jury said');
    expect(tokenizer!.encode('The jury said')).toEqual(prompt);
    const run = async (m: typeof model) => {
      const ids: number[] = [];
      for await (const id of generate(m, prompt, { maxNewTokens: 8, greedy: true })) ids.push(id);
      return ids;
    };
    expect(await run(model)).toEqual(await run(reference));
    expect(snapshot.revision).toBe('main');
    model.dispose();
    reference.dispose();
  });
});

describe('the token', () => {
  it('never appears in messages or progress, even when a server echoes it', async () => {
    const cacheDir = freshCache();
    const echoing: typeof fetch = async () =>
      new Response('{}', {
        status: 403,
        headers: { 'x-error-code': 'GatedRepo', 'x-error-message': `token ${TOKEN} has no access` },
      });
    const error = await failure(snapshotDownload('test/tiny', options(cacheDir, { token: TOKEN, fetch: echoing })));
    expect(error).toBeInstanceOf(HubAuthError);
    expect(error.message).toContain('token *** has no access');
    // Everything every test above said, with the token used in several of them.
    await snapshotDownload('test/gated', options(cacheDir, { token: TOKEN }));
    expect(said.length).toBeGreaterThan(20);
    for (const line of said) expect(line).not.toContain(TOKEN);
  });
});
