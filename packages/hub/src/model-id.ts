/** Hub model ids as users write them: `owner/name`, `owner/name@revision`, with or without `hf:`. */
import { HubModelIdError } from './errors.js';

/** The prefix that marks a Hub model where a folder path is expected (`--model hf:owner/name`). */
export const HUB_PREFIX = 'hf:';
/** The branch the Hub serves when no revision is named. */
export const DEFAULT_REVISION = 'main';

export interface HubModelId {
  /** `owner/name` (or a legacy `name` without owner). */
  readonly repo: string;
  /** A branch, a tag or a commit hash. */
  readonly revision: string;
}

/** A commit hash: a revision that never moves, so its snapshot can be used without asking the Hub. */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

// The Hub's repository names: letters, digits, '-', '_', '.', not starting with '.' or '-' (so never '..').
const NAME_PART = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}$/;

/** Whether a `--model` value names a Hub model rather than a folder. */
export function isHubModel(value: string): boolean {
  return value.startsWith(HUB_PREFIX);
}

/** Parses `[hf:]owner/name[@revision]`; `revision` given here wins over one in the text. */
export function parseModelId(text: string, revision?: string): HubModelId {
  const body = isHubModel(text) ? text.slice(HUB_PREFIX.length) : text;
  const at = body.indexOf('@');
  const repo = at < 0 ? body : body.slice(0, at);
  const parts = repo.split('/');
  if (parts.length > 2 || !parts.every((p) => NAME_PART.test(p)) || repo.includes('--'))
    throw new HubModelIdError(text, `the repository ${JSON.stringify(repo)} is not a Hub name`);
  const named = at < 0 ? undefined : body.slice(at + 1);
  if (named === '') throw new HubModelIdError(text, 'nothing follows @');
  const chosen = revision ?? named ?? DEFAULT_REVISION;
  checkRevision(text, chosen);
  return { repo, revision: chosen };
}

/**
 * A revision is a git ref name or a commit hash. It becomes a path under `refs/` in the cache (as
 * huggingface_hub writes `refs/pr/1`), so no segment may be empty, `.` or `..`.
 */
function checkRevision(text: string, revision: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(revision))
    throw new HubModelIdError(text, `the revision ${JSON.stringify(revision)} has a character git refs cannot`);
  if (revision.split('/').some((s) => s === '' || s === '.' || s === '..' || s.endsWith('.lock')))
    throw new HubModelIdError(text, `the revision ${JSON.stringify(revision)} is not a ref name`);
}

export function formatModelId(id: HubModelId): string {
  return `${id.repo}@${id.revision}`;
}
