/**
 * The Hub's HTTP API, as huggingface_hub speaks it: the model info with `?blobs=true` (commit, files,
 * sizes, LFS sha256), `/{repo}/resolve/{commit}/{file}` for the bytes (a 302 to a CDN for large files),
 * and errors told apart by status and `X-Error-Code`. Works with any fetch (Node 20's, a browser's).
 */
import { HubAuthError, type HubError, HubNotFoundError, HubRequestError, redact, type TokenSource } from './errors.js';
import { COMMIT_HASH, type HubModelId } from './model-id.js';

/** The public Hub; HF_ENDPOINT (Node) or the `endpoint` option points elsewhere (a mirror, a test server). */
export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubClient {
  /** Without a trailing slash. */
  readonly endpoint: string;
  readonly token: string | null;
  readonly tokenSource: TokenSource | null;
  readonly fetch: typeof fetch;
  /**
   * 'manual' follows redirects here, sending the token only to the endpoint's origin and the Range to
   * the final host (Node); 'follow' leaves them to fetch (browsers, where a manual redirect is opaque).
   */
  readonly redirects: 'manual' | 'follow';
}

export function hubClient(options: {
  endpoint?: string;
  token?: string | null;
  tokenSource?: TokenSource | null;
  fetch?: typeof fetch;
  redirects?: 'manual' | 'follow';
}): HubClient {
  const token = options.token?.trim() || null;
  return {
    endpoint: (options.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token,
    tokenSource: token ? (options.tokenSource ?? 'token option') : null,
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    redirects: options.redirects ?? 'manual',
  };
}

/** A file of the repository at a commit, as the model info lists it. */
export interface RepoFile {
  readonly name: string;
  readonly size: number;
  /** The git blob id (sha1 of `blob SIZE\0` + content for a plain file; of the pointer for an LFS file). */
  readonly blobId: string | null;
  /** An LFS file's sha256: its cache blob name and its checksum. */
  readonly sha256: string | null;
}

export interface RepoInfo {
  /** The commit the revision points at. */
  readonly commit: string;
  readonly files: ReadonlyMap<string, RepoFile>;
}

/** The model's commit and files at `id.revision` (GET /api/models/{repo}/revision/{revision}?blobs=true). */
export async function fetchRepoInfo(client: HubClient, id: HubModelId): Promise<RepoInfo> {
  const url = `${client.endpoint}/api/models/${id.repo}/revision/${encodeURIComponent(id.revision)}?blobs=true`;
  const response = await send(client, id, url, {});
  if (!response.ok) throw await hubResponseError(client, id, response, null);
  let json: unknown;
  try {
    json = await response.json();
  } catch (error) {
    throw malformed(id, url, `not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const body = json as { sha?: unknown; siblings?: unknown } | null;
  if (typeof body?.sha !== 'string' || !COMMIT_HASH.test(body.sha))
    throw malformed(id, url, 'no 40-hex "sha" (the commit)');
  if (!Array.isArray(body.siblings)) throw malformed(id, url, 'no "siblings" list');
  const files = new Map<string, RepoFile>();
  for (const entry of body.siblings as unknown[]) {
    const s = entry as { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: { sha256?: unknown } | null };
    if (typeof s?.rfilename !== 'string') throw malformed(id, url, 'a sibling without "rfilename"');
    const sha256 = s.lfs ? s.lfs.sha256 : null;
    if (sha256 !== null && (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)))
      throw malformed(id, url, `${s.rfilename}: "lfs.sha256" is not 64 hex digits`);
    files.set(s.rfilename, {
      name: s.rfilename,
      size: typeof s.size === 'number' && Number.isSafeInteger(s.size) && s.size >= 0 ? s.size : -1,
      blobId: typeof s.blobId === 'string' && /^[0-9a-f]{40}$/.test(s.blobId) ? s.blobId : null,
      sha256,
    });
  }
  return { commit: body.sha, files };
}

/** Where a file's bytes are served: `{endpoint}/{repo}/resolve/{commit}/{file}`. */
export function resolveUrl(client: HubClient, repo: string, commit: string, file: string): string {
  return `${client.endpoint}/${repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/** A file's response, and the etag the Hub itself sent for it (before any redirect to a CDN). */
export interface FileResponse {
  readonly response: Response;
  /**
   * `X-Linked-Etag`, else `ETag`, of the Hub's answer, unquoted (huggingface_hub's _normalize_etag):
   * an LFS file's sha256, or a plain file's git blob id.
   */
  readonly etag: string | null;
}

/** GETs a file (from `offset` on, with a Range), following redirects as the client says. */
export async function requestFile(
  client: HubClient,
  id: HubModelId,
  url: string,
  offset: number,
  signal?: AbortSignal,
): Promise<FileResponse> {
  // identity: the sizes and offsets are of the file itself, never of a compressed stream.
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
  if (offset > 0) headers.Range = `bytes=${offset}-`;
  let response = await send(client, id, url, headers, signal);
  const hub = response;
  for (let hops = 0; client.redirects === 'manual' && isRedirect(response.status); hops++) {
    const location = response.headers.get('location');
    if (!location || hops >= 10)
      throw new HubRequestError(id.repo, id.revision, response.status, `${url}: a redirect without end or target`);
    await response.body?.cancel();
    response = await send(client, id, new URL(location, response.url || url).href, headers, signal);
  }
  return {
    response,
    etag: normalizeEtag(hub.headers.get('x-linked-etag') ?? hub.headers.get('etag')),
  };
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** `W/"abc"` and `"abc"` → `abc`. */
export function normalizeEtag(etag: string | null): string | null {
  return etag === null ? null : etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/**
 * One request; the token goes to the endpoint's origin only. A connection that fails before any answer
 * (a reset keep-alive socket, a refused connection) is tried twice more; then it is a HubRequestError.
 */
async function send(
  client: HubClient,
  id: HubModelId,
  url: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<Response> {
  const sameOrigin = new URL(url).origin === new URL(client.endpoint).origin;
  const all = client.token && sameOrigin ? { ...headers, Authorization: `Bearer ${client.token}` } : headers;
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.fetch(url, { headers: all, redirect: client.redirects, signal });
    } catch (error) {
      if (signal?.aborted) throw error;
      if (attempt < 3) {
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
        continue;
      }
      const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : error;
      throw new HubRequestError(
        id.repo,
        id.revision,
        null,
        `could not reach ${new URL(url).origin} (${redact(String(cause), client.token)}); ` +
          'check the network, HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only',
        { cause: error },
      );
    }
  }
}

/** The typed error for a failed answer; `file` is the file asked for, or null for the model info. */
export async function hubResponseError(
  client: HubClient,
  id: HubModelId,
  response: Response,
  file: string | null,
): Promise<HubError> {
  const code = response.headers.get('x-error-code');
  let detail = response.headers.get('x-error-message') ?? '';
  if (!detail) {
    const text = await response.text().catch(() => '');
    try {
      const json = JSON.parse(text) as { error?: unknown };
      detail = typeof json.error === 'string' ? json.error : '';
    } catch {
      detail = text.startsWith('<') ? '' : text;
    }
  }
  detail = redact(detail, client.token).replace(/\s+/g, ' ').trim().slice(0, 300);
  const said = [code, detail].filter(Boolean).join(': ');
  const what = file ? `${file}` : 'the model info';
  if (code === 'RepositoryNotFound' || (response.status === 404 && file === null && code !== 'RevisionNotFound')) {
    return new HubNotFoundError(
      id.repo,
      id.revision,
      'repository',
      `repository ${id.repo} not found at revision ${id.revision} on ${client.endpoint} (${response.status}` +
        `${said ? ` ${said}` : ''}); check the name` +
        (client.token ? '' : ' (a private or gated repository answers so without a token: set HF_TOKEN)'),
    );
  }
  if (code === 'RevisionNotFound')
    return new HubNotFoundError(
      id.repo,
      id.revision,
      'revision',
      `revision ${JSON.stringify(id.revision)} not found in ${id.repo} on ${client.endpoint} (${response.status})`,
    );
  if (response.status === 401 || response.status === 403)
    return new HubAuthError(id.repo, id.revision, response.status, `${what}${said ? `, ${said}` : ''}`, {
      sent: client.token !== null,
      source: client.tokenSource,
    });
  if (response.status === 404)
    return new HubNotFoundError(
      id.repo,
      id.revision,
      'file',
      `${what} not found in ${id.repo} at revision ${id.revision} (${response.status}${said ? ` ${said}` : ''})`,
    );
  return new HubRequestError(
    id.repo,
    id.revision,
    response.status,
    `${what}: the Hub answered ${response.status} ${response.statusText}${said ? ` (${said})` : ''}`,
  );
}

function malformed(id: HubModelId, url: string, problem: string): HubRequestError {
  return new HubRequestError(
    id.repo,
    id.revision,
    null,
    `${url}: the model info is not what the Hub sends: ${problem}`,
  );
}
