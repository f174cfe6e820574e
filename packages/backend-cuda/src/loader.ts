/**
 * Finding and loading the native addon, without ever throwing: the result is the addon or the reason
 * there is none (which file was not found, or why the one found would not load).
 *
 * Where it looks, in order:
 *   1. $DIFFTX_CUDA_ADDON, when set: that file and nothing else (e.g. for a bundled CLI).
 *   2. prebuilds/<platform>-<arch>/diff_transformer_cuda.node in the package (what the tarball carries).
 *   3. native/build/Release/diff_transformer_cuda.node (a local `build:native`), then build/Release/.
 * "The package" is the directory above this module (dist/ when installed, src/ in tests); for a bundle
 * that inlines this module (the difftx CLI), also the bundle's own directory, this package installed
 * beside the bundling one (node_modules/@diff-transformer/backend-cuda seen from …/cli/dist) and, in this
 * repository, packages/backend-cuda seen from apps/cli/dist.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CudaAddon } from './addon.js';

export const ADDON_FILE = 'diff_transformer_cuda.node';
export const ADDON_ENV = 'DIFFTX_CUDA_ADDON';
export const BUILD_COMMAND = 'pnpm --filter @diff-transformer/backend-cuda build:native';

export type LoadResult =
  | { readonly ok: true; readonly addon: CudaAddon; readonly path: string }
  | { readonly ok: false; readonly reason: string; readonly searched: readonly string[] };

function moduleDirectory(): string {
  return dirname(fileURLToPath(import.meta.url));
}

/** Every path the loader tries, in order. */
export function addonCandidates(env: NodeJS.ProcessEnv = process.env, from: string = moduleDirectory()): string[] {
  const explicit = env[ADDON_ENV];
  if (explicit) return [resolve(explicit)];
  const platform = `${process.platform}-${process.arch}`;
  // The package itself, its dist/ or src/, the monorepo seen from apps/cli/dist, and this package installed
  // beside another one that bundles it (the published difftx).
  const roots = [
    resolve(from, '..'),
    from,
    resolve(from, '..', '..', '..', 'packages', 'backend-cuda'),
    resolve(from, '..', '..', 'backend-cuda'),
  ];
  const candidates: string[] = [];
  for (const root of roots) {
    candidates.push(join(root, 'prebuilds', platform, ADDON_FILE));
    candidates.push(join(root, 'native', 'build', 'Release', ADDON_FILE));
    candidates.push(join(root, 'build', 'Release', ADDON_FILE));
  }
  return [...new Set(candidates)];
}

let cached: LoadResult | undefined;

/** Loads the addon once per process (later calls return the same result). */
export function loadAddon(): LoadResult {
  cached ??= tryLoad(addonCandidates());
  return cached;
}

/** Loads the first existing candidate; never throws. */
export function tryLoad(candidates: readonly string[]): LoadResult {
  const path = candidates.find((c) => existsSync(c));
  if (!path) return { ok: false, reason: notFoundReason(candidates), searched: candidates };
  try {
    const addon = createRequire(import.meta.url)(path) as CudaAddon;
    if (typeof addon?.init !== 'function') {
      return {
        ok: false,
        reason: `${path} is not the diff-transformer CUDA addon (it has no init())`,
        searched: candidates,
      };
    }
    return { ok: true, addon, path };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { ok: false, reason: `the native addon ${path} could not be loaded: ${message}`, searched: candidates };
  }
}

function notFoundReason(candidates: readonly string[]): string {
  const platform = `${process.platform}-${process.arch}`;
  if (process.env[ADDON_ENV]) {
    return `the native addon was not found: ${ADDON_ENV} names ${candidates[0]}, which does not exist`;
  }
  const supported = platform === 'linux-x64';
  return (
    `the native addon was not found (looked for ${candidates.join(', ')}). ` +
    (supported
      ? `This install has no prebuilt binary for ${platform}: ` +
        `build it from source with \`${BUILD_COMMAND}\` (needs the CUDA toolkit), ` +
        `or set ${ADDON_ENV} to a built ${ADDON_FILE}`
      : `The CUDA backend ships a prebuilt binary for linux-x64 only, not ${platform}`)
  );
}
