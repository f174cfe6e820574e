/**
 * The environment variables huggingface_hub reads, read the same way, so one setup serves Python and
 * this project: HF_ENDPOINT; HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the token file that
 * `hf auth login` writes (HF_TOKEN_PATH, else HF_HOME/token); HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE);
 * the cache through @huggingface/hub's getHFHubCachePath (HF_HUB_CACHE, else HF_HOME/hub, …).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getHFHubCachePath } from '@huggingface/hub';
import { DEFAULT_ENDPOINT } from '../api.js';
import type { TokenSource } from '../errors.js';

export interface HubEnvironment {
  readonly endpoint: string;
  readonly token: string | null;
  readonly tokenSource: TokenSource | null;
  readonly offline: boolean;
  readonly cacheDir: string;
}

/** huggingface_hub's ENV_VARS_TRUE_VALUES. */
function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(value.toUpperCase());
}

function hfHome(env: NodeJS.ProcessEnv): string {
  return env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
}

function token(env: NodeJS.ProcessEnv): { token: string | null; tokenSource: TokenSource | null } {
  for (const name of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN'] as const) {
    const value = env[name]?.trim();
    if (value) return { token: value, tokenSource: name };
  }
  try {
    const value = readFileSync(env.HF_TOKEN_PATH ?? join(hfHome(env), 'token'), 'utf8').trim();
    if (value) return { token: value, tokenSource: 'token file' };
  } catch {
    // No token file: anonymous, as huggingface_hub is.
  }
  return { token: null, tokenSource: null };
}

/** The settings of this process's environment, read now (not at import). */
export function hubEnvironment(): HubEnvironment {
  const env = process.env;
  return {
    endpoint: env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT,
    ...token(env),
    offline: isTrue(env.HF_HUB_OFFLINE) || isTrue(env.TRANSFORMERS_OFFLINE),
    cacheDir: getHFHubCachePath(),
  };
}
