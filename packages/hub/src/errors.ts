/**
 * Typed errors of the Hub client. Each names the model (`owner/name@revision`) and says what to do;
 * none ever holds the access token: text that came from a server passes through `redact` first.
 */
import { DiffTransformerError } from '@diff-transformer/core';

/** Where the access token came from, for messages (never the token itself). */
export type TokenSource = 'HF_TOKEN' | 'HUGGING_FACE_HUB_TOKEN' | 'token file' | 'token option';

/** Base class of every Hub problem: `repo` and `revision` say which model. */
export class HubError extends DiffTransformerError {
  readonly repo: string;
  readonly revision: string;
  constructor(code: string, repo: string, revision: string, message: string, options?: { cause?: unknown }) {
    super(code, `hf:${repo}@${revision}: ${message}`, options);
    this.repo = repo;
    this.revision = revision;
  }
}

/** `owner/name[@revision]` that is not a Hub model id. */
export class HubModelIdError extends DiffTransformerError {
  constructor(given: string, problem: string) {
    super(
      'HUB_MODEL_ID',
      `${JSON.stringify(given)} is not a Hub model id (${problem}); expected owner/name or owner/name@revision`,
    );
  }
}

/** 401 or 403: the repository is private or gated, or the token is wrong. */
export class HubAuthError extends HubError {
  readonly status: number;
  readonly tokenSent: boolean;
  constructor(
    repo: string,
    revision: string,
    status: number,
    detail: string,
    token: { sent: boolean; source: TokenSource | null },
  ) {
    super(
      'HUB_UNAUTHORIZED',
      repo,
      revision,
      `the Hub refused access (${status}${detail ? `: ${detail}` : ''}). ` +
        (token.sent
          ? `A token was sent (from ${token.source}) and it does not give access: check that it is valid ` +
            'and, for a gated model, that its account has accepted the terms on the model page.'
          : 'No token was sent: set HF_TOKEN (or the token option) to a Hugging Face access token that can read this model ' +
            '(for a gated model, accept its terms on the model page first).'),
    );
    this.status = status;
    this.tokenSent = token.sent;
  }
}

/** 404 (or the Hub's RepositoryNotFound): no such repository, revision or file. */
export class HubNotFoundError extends HubError {
  readonly what: 'repository' | 'revision' | 'file';
  constructor(repo: string, revision: string, what: 'repository' | 'revision' | 'file', detail: string) {
    super('HUB_NOT_FOUND', repo, revision, detail);
    this.what = what;
  }
}

/** A file's bytes do not match the Hub's checksum (or its size): nothing of it was kept. */
export class HubChecksumError extends HubError {
  readonly file: string;
  constructor(repo: string, revision: string, file: string, detail: string) {
    super(
      'HUB_CHECKSUM_MISMATCH',
      repo,
      revision,
      `${file}: ${detail}; the download was discarded (nothing of it is kept in the cache)`,
    );
    this.file = file;
  }
}

/** A file name (from the server or a shard index) or a cached link that would leave the snapshot folder. */
export class HubUnsafePathError extends HubError {
  readonly path: string;
  constructor(repo: string, revision: string, path: string, detail: string) {
    super('HUB_UNSAFE_PATH', repo, revision, `refused ${JSON.stringify(path)}: ${detail}`);
    this.path = path;
  }
}

/** Offline (HF_HUB_OFFLINE=1, or the Hub unreachable) and the cache lacks what the model needs. */
export class HubOfflineError extends HubError {
  readonly missing: readonly string[];
  constructor(repo: string, revision: string, missing: readonly string[], detail: string) {
    super('HUB_NOT_CACHED', repo, revision, detail);
    this.missing = missing;
  }
}

/** The repository holds no model this project reads (no safetensors, a broken shard index). */
export class HubRepoContentError extends HubError {
  constructor(repo: string, revision: string, detail: string) {
    super('HUB_REPO_CONTENT', repo, revision, detail);
  }
}

/** Any other failed request: a server error, a dropped connection, an answer of the wrong form. */
export class HubRequestError extends HubError {
  readonly status: number | null;
  constructor(repo: string, revision: string, status: number | null, detail: string, options?: { cause?: unknown }) {
    super('HUB_REQUEST', repo, revision, detail, options);
    this.status = status;
  }
}

/** `text` with every occurrence of the token replaced: servers' messages are shown, tokens never. */
export function redact(text: string, token: string | null): string {
  return token ? text.split(token).join('***') : text;
}
