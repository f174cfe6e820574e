/**
 * A Hugging Face Hub on 127.0.0.1, answering as the real one does where huggingface_hub and our client
 * look (huggingface_hub's file_download.py and hf_api.py):
 *   GET /api/models/{repo}/revision/{rev}?blobs=true → {sha, siblings: [{rfilename, size, blobId, lfs?}]}
 *   GET /{repo}/resolve/{rev}/{file} → a plain file with ETag "<git blob id>" and X-Repo-Commit; an LFS
 *       file as a 302 to a CDN on another origin with X-Linked-Etag "<sha256>" and X-Linked-Size
 *   Range requests (206, Content-Range), 401/403/404 with X-Error-Code and X-Error-Message, CORS.
 * Tests make it misbehave on purpose (drop a connection mid-body, serve corrupted bytes) and read the
 * requests it saw (Range, whether an Authorization header came, to which server).
 */
import { createHash } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly server: 'hub' | 'cdn';
  readonly method: string;
  readonly path: string;
  readonly range: string | null;
  readonly authorization: string | null;
}

export interface RepoOptions {
  /** Files readable only with the hub's token (401 without one, 403 with another). */
  readonly gated?: boolean;
  /** Default 'main'. */
  readonly branch?: string;
  /** Which files are stored in LFS (served through the CDN). Default: *.safetensors. */
  readonly lfs?: (name: string) => boolean;
}

export interface FakeHub {
  /** The endpoint, for HF_ENDPOINT: http://127.0.0.1:PORT. */
  readonly url: string;
  /** The CDN's origin (another port): where LFS files redirect. */
  readonly cdnUrl: string;
  readonly requests: SeenRequest[];
  /** Publishes files as a repository's commit on its branch; returns the commit. */
  addRepo(repo: string, files: Record<string, Uint8Array | string>, options?: RepoOptions): string;
  /** Serves `file` with one byte flipped from now on (its listed checksum stays the true one). */
  corrupt(repo: string, file: string): void;
  /** Closes the connection after `bytes` bytes of `file`'s body, for its next `times` transfers. */
  dropAfter(repo: string, file: string, bytes: number, times?: number): void;
  /** Delays every body chunk of `file` (for concurrent downloads to overlap). */
  throttle(repo: string, file: string, chunkBytes: number, delayMs: number): void;
  close(): Promise<void>;
}

interface StoredFile {
  readonly bytes: Uint8Array;
  readonly blobId: string;
  readonly sha256: string | null;
  corrupt: boolean;
  drops: Array<{ bytes: number }>;
  throttle: { chunkBytes: number; delayMs: number } | null;
}

interface Repo {
  readonly commit: string;
  readonly branch: string;
  readonly gated: boolean;
  readonly files: Map<string, StoredFile>;
}

const gitBlobId = (bytes: Uint8Array) =>
  createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const CORS: OutgoingHttpHeaders = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers':
    'X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag, Content-Range, Content-Length, X-Error-Code, X-Error-Message',
  'cross-origin-resource-policy': 'cross-origin',
};

/** Starts the hub and its CDN; `token` is the one that opens gated repositories. */
export async function startFakeHub(options: { token?: string } = {}): Promise<FakeHub> {
  const repos = new Map<string, Repo>();
  const requests: SeenRequest[] = [];
  let cdnUrl = '';

  const see = (server: SeenRequest['server'], request: IncomingMessage, path: string) =>
    requests.push({
      server,
      method: request.method ?? 'GET',
      path,
      range: request.headers.range ?? null,
      authorization: request.headers.authorization ?? null,
    });

  const hub = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    see('hub', request, url.pathname);
    if (request.method === 'OPTIONS') return preflight(response);
    const auth = request.headers.authorization ?? null;
    const api = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const match = api ?? resolve;
    if (!match) return fail(response, 404, null, 'Not Found');
    const repoName = match[1];
    const revision = decodeURIComponent(match[2]);
    const repo = repos.get(repoName);
    if (!repo)
      return fail(response, auth ? 404 : 401, 'RepositoryNotFound', `Repository Not Found for url: ${url.href}.`);
    if (revision !== repo.branch && revision !== repo.commit)
      return fail(response, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    if (api) return answerInfo(response, repoName, repo);
    const name = decodeURIComponent(resolve![3]);
    const file = repo.files.get(name);
    if (!file) return fail(response, 404, 'EntryNotFound', `${name} does not exist on "${revision}"`);
    if (repo.gated && auth !== `Bearer ${options.token}`)
      return fail(
        response,
        auth ? 403 : 401,
        'GatedRepo',
        auth
          ? `Access to model ${repoName} is restricted and you are not in the authorized list.`
          : `Access to model ${repoName} is restricted. You must have access to it and be authenticated to access it.`,
      );
    const headers: OutgoingHttpHeaders = { ...CORS, 'x-repo-commit': repo.commit, etag: `"${file.blobId}"` };
    if (file.sha256) {
      // LFS: the Hub answers with the file's sha256 and size, and a signed URL on the CDN.
      response
        .writeHead(302, {
          ...headers,
          'x-linked-etag': `"${file.sha256}"`,
          'x-linked-size': String(file.bytes.length),
          location: `${cdnUrl}/repos/${repoName.replace('/', '--')}/${file.sha256}?X-Amz-Signature=fake`,
        })
        .end();
      return;
    }
    void sendBytes(request, response, file, headers);
  });

  const cdn = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    see('cdn', request, url.pathname);
    if (request.method === 'OPTIONS') return preflight(response);
    const [, repoName, sha] = /^\/repos\/([^/]+)\/([0-9a-f]{64})$/.exec(url.pathname) ?? [];
    const file = [...(repos.get(repoName?.replace('--', '/') ?? '')?.files.values() ?? [])].find(
      (f) => f.sha256 === sha,
    );
    if (!file) return fail(response, 404, null, 'NoSuchKey');
    void sendBytes(request, response, file, { ...CORS, etag: `"${file.sha256}"` });
  });

  await Promise.all([listen(hub), listen(cdn)]);
  const url = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  cdnUrl = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;

  const stored = (repo: string, name: string) => {
    const file = repos.get(repo)?.files.get(name);
    if (!file) throw new Error(`fake hub: no ${repo}/${name}`);
    return file;
  };

  return {
    url,
    cdnUrl,
    requests,
    addRepo(repo, files, repoOptions = {}) {
      const isLfs = repoOptions.lfs ?? ((name: string) => name.endsWith('.safetensors'));
      const map = new Map<string, StoredFile>();
      const commitHash = createHash('sha1').update(repo);
      for (const [name, content] of Object.entries(files)) {
        const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
        const lfsSha = isLfs(name) ? sha256(bytes) : null;
        const pointer =
          lfsSha && `version https://git-lfs.github.com/spec/v1\noid sha256:${lfsSha}\nsize ${bytes.length}\n`;
        const file: StoredFile = {
          bytes,
          blobId: gitBlobId(pointer ? new TextEncoder().encode(pointer) : bytes),
          sha256: lfsSha,
          corrupt: false,
          drops: [],
          throttle: null,
        };
        map.set(name, file);
        commitHash.update(name).update(file.blobId);
      }
      const commit = commitHash.digest('hex');
      repos.set(repo, { commit, branch: repoOptions.branch ?? 'main', gated: repoOptions.gated ?? false, files: map });
      return commit;
    },
    corrupt(repo, name) {
      stored(repo, name).corrupt = true;
    },
    dropAfter(repo, name, bytes, times = 1) {
      for (let i = 0; i < times; i++) stored(repo, name).drops.push({ bytes });
    },
    throttle(repo, name, chunkBytes, delayMs) {
      stored(repo, name).throttle = { chunkBytes, delayMs };
    },
    close: async () => {
      hub.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([close(hub), close(cdn)]);
    },
  };

  function answerInfo(response: ServerResponse, name: string, repo: Repo): void {
    const siblings = [...repo.files].map(([rfilename, f]) => ({
      rfilename,
      blobId: f.blobId,
      size: f.bytes.length,
      ...(f.sha256 ? { lfs: { sha256: f.sha256, size: f.bytes.length, pointerSize: 134 } } : {}),
    }));
    const body = JSON.stringify({
      _id: repo.commit.slice(0, 24),
      id: name,
      modelId: name,
      sha: repo.commit,
      private: false,
      gated: repo.gated ? 'manual' : false,
      disabled: false,
      siblings,
    });
    response.writeHead(200, { ...CORS, 'content-type': 'application/json; charset=utf-8' }).end(body);
  }
}

/** The file's bytes, whole or from a Range's start, with the test's misbehaviour applied. */
async function sendBytes(
  request: IncomingMessage,
  response: ServerResponse,
  file: StoredFile,
  headers: OutgoingHttpHeaders,
): Promise<void> {
  let bytes = file.bytes;
  if (file.corrupt) {
    bytes = new Uint8Array(bytes);
    bytes[bytes.length >> 1] ^= 0xff;
  }
  const total = bytes.length;
  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
  const start = range ? Number(range[1]) : 0;
  if (range && start >= total) {
    response.writeHead(416, { ...headers, 'content-range': `bytes */${total}` }).end();
    return;
  }
  const body = bytes.subarray(start);
  response.writeHead(range ? 206 : 200, {
    ...headers,
    'accept-ranges': 'bytes',
    'content-type': 'application/octet-stream',
    'content-length': String(body.length),
    ...(range ? { 'content-range': `bytes ${start}-${total - 1}/${total}` } : {}),
  });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  const drop = file.drops.shift();
  const limit = drop ? Math.min(drop.bytes, body.length) : body.length;
  const step = file.throttle?.chunkBytes ?? 1 << 16;
  for (let at = 0; at < limit; at += step) {
    // Each chunk reaches the socket before the next (and before a drop), so a drop cuts at a known byte.
    await new Promise((resolve) => response.write(body.subarray(at, Math.min(limit, at + step)), resolve));
    if (file.throttle) await new Promise((resolve) => setTimeout(resolve, file.throttle!.delayMs));
    if (response.destroyed) return;
  }
  // A dropped connection: the socket closes with the body short of its Content-Length.
  if (drop) response.socket?.end();
  else response.end();
}

function fail(response: ServerResponse, status: number, code: string | null, message: string): void {
  response
    .writeHead(status, {
      ...CORS,
      'content-type': 'application/json; charset=utf-8',
      ...(code ? { 'x-error-code': code, 'x-error-message': message } : {}),
    })
    .end(JSON.stringify({ error: message }));
}

function preflight(response: ServerResponse): void {
  response
    .writeHead(204, {
      ...CORS,
      'access-control-allow-headers': 'Authorization, Range',
      'access-control-allow-methods': 'GET, HEAD',
    })
    .end();
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
