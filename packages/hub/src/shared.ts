/** What both entries export: model ids, errors and progress events. */
export {
  HubAuthError,
  HubChecksumError,
  HubError,
  HubModelIdError,
  HubNotFoundError,
  HubOfflineError,
  HubRepoContentError,
  HubRequestError,
  HubUnsafePathError,
  type TokenSource,
} from './errors.js';
export { DEFAULT_REVISION, HUB_PREFIX, type HubModelId, isHubModel, parseModelId } from './model-id.js';
export { DEFAULT_ENDPOINT } from './api.js';
export type { DownloadProgress, ProgressCallback } from './progress.js';
