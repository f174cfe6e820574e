/**
 * Finding and loading the native engine's addon (Node on Linux x64 and arm64), without ever throwing:
 * the result is the addon, or the reason there is none.
 *
 * The package carries one addon per instruction set in prebuilds/<platform>-<arch>/
 * (scripts/build-native.mjs). The baseline one, which every CPU of the architecture runs, reports
 * what this CPU and its operating system support (CPUID); the best addon the CPU can run is then
 * loaded: avx512 (AVX-512 F/BW/DQ/VL), avx2 (AVX2 and FMA), baseline.
 *
 * Where it looks: $DIFFTX_CPU_ADDON_DIR when set (a folder holding the .node files, for a bundle or a
 * build of one's own), else prebuilds/<platform>-<arch>/ of the package (the directory above this
 * module: dist/ when installed, src/ in tests), of the bundle's own directory, of this package installed
 * beside the bundling one (the published difftx), and, for the CLI bundle of this repository, of
 * packages/backend-cpu seen from apps/cli/dist. $DIFFTX_CPU_ISA (avx512, avx2,
 * baseline) caps the instruction set, e.g. to compare them on one machine.
 */
import type { NativeAddon } from './addon.js';

export const ADDON_DIR_ENV = 'DIFFTX_CPU_ADDON_DIR';
export const ISA_ENV = 'DIFFTX_CPU_ISA';
export const BUILD_COMMAND = 'pnpm --filter @diff-transformer/backend-cpu build:native';

/** The instruction sets of the addons, best first. */
export const ISAS = ['avx512', 'avx2', 'baseline'] as const;
export type Isa = (typeof ISAS)[number];

export type NativeLoad =
  | { readonly ok: true; readonly addon: NativeAddon; readonly path: string; readonly isa: Isa; readonly why: string }
  | { readonly ok: false; readonly reason: string };

const inNode = typeof process === 'object' && typeof process.versions?.node === 'string';

const cached = new Map<Isa | undefined, Promise<NativeLoad>>();

/**
 * Loads the best addon this CPU runs, at most `cap` (default: $DIFFTX_CPU_ISA, else no cap); once per
 * process and cap (later calls return the same result).
 */
export function loadNativeAddon(cap?: Isa): Promise<NativeLoad> {
  let result = cached.get(cap);
  if (!result) {
    result = load(cap);
    cached.set(cap, result);
  }
  return result;
}

export const addonFile = (isa: Isa): string => `diff_transformer_cpu_${isa}.node`;

async function load(isaCap: Isa | undefined): Promise<NativeLoad> {
  if (!inNode) return { ok: false, reason: 'the native engine runs in Node only' };
  const platform = `${process.platform}-${process.arch}`;
  if (platform !== 'linux-x64' && platform !== 'linux-arm64') {
    return { ok: false, reason: `no native engine for ${platform} (built for linux-x64 and linux-arm64)` };
  }
  try {
    const fs = (await importNode('node:fs')) as typeof import('node:fs');
    const path = (await importNode('node:path')) as typeof import('node:path');
    const url = (await importNode('node:url')) as typeof import('node:url');
    const dirs = candidateDirs(path, url, platform);
    const dir = dirs.find((d) => fs.existsSync(path.join(d, addonFile('baseline'))));
    if (!dir) {
      return {
        ok: false,
        reason:
          `the native addon was not found (looked for ${addonFile('baseline')} in ${dirs.join(', ')}); ` +
          `build it with \`${BUILD_COMMAND}\` (needs g++)`,
      };
    }
    const baseline = open(path.join(dir, addonFile('baseline')));
    const cpu = baseline.cpu();
    const fromEnv = (process.env[ISA_ENV] || undefined) as Isa | undefined;
    if (isaCap === undefined && fromEnv !== undefined && !ISAS.includes(fromEnv)) {
      return { ok: false, reason: `${ISA_ENV}=${fromEnv}: expected one of ${ISAS.join(', ')}` };
    }
    const cap = isaCap ?? fromEnv;
    const runs: Record<Isa, boolean> = {
      avx512: Boolean(cpu.avx512f && cpu.avx512bw && cpu.avx512dq && cpu.avx512vl),
      avx2: Boolean(cpu.avx2 && cpu.fma),
      baseline: true,
    };
    const allowed = cap ? ISAS.slice(ISAS.indexOf(cap)) : ISAS;
    const isa = allowed.find((i) => runs[i] && fs.existsSync(path.join(dir, addonFile(i)))) ?? 'baseline';
    const file = path.join(dir, addonFile(isa));
    const addon = isa === 'baseline' ? baseline : open(file);
    const why =
      cap && cap !== ISAS[0]
        ? isaCap
          ? `isa: '${cap}' asked for`
          : `${ISA_ENV}=${cap}`
        : isa === 'avx512'
          ? 'CPUID: AVX-512'
          : isa === 'avx2'
            ? 'CPUID: AVX2 and FMA, no AVX-512'
            : process.arch === 'arm64'
              ? 'arm64: NEON'
              : 'CPUID: no AVX2 with FMA';
    return { ok: true, addon, path: file, isa, why };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { ok: false, reason: `the native addon could not be loaded: ${message}` };
  }
}

function candidateDirs(path: typeof import('node:path'), url: typeof import('node:url'), platform: string): string[] {
  const explicit = process.env[ADDON_DIR_ENV];
  if (explicit) return [path.resolve(explicit)];
  const from = path.dirname(url.fileURLToPath(import.meta.url));
  const roots = [path.resolve(from, '..'), from, path.resolve(from, '..', '..', '..', 'packages', 'backend-cpu')];
  // In the sources (tests) this module sits one folder deeper, in src/native/.
  roots.push(path.resolve(from, '..', '..'));
  // Bundled into another package's dist/ (the published difftx): this package installed beside it.
  roots.push(path.resolve(from, '..', '..', 'backend-cpu'));
  return [...new Set(roots.map((root) => path.join(root, 'prebuilds', platform)))];
}

const opened = new Map<string, NativeAddon>();

/** Loads a .node file once (process.dlopen: no `require` needed, in an ES module or a bundle). */
function open(file: string): NativeAddon {
  const known = opened.get(file);
  if (known) return known;
  const module = { exports: {} as NativeAddon };
  process.dlopen(module, file);
  if (typeof module.exports.createEngine !== 'function') {
    throw new Error(`${file} is not the diff-transformer CPU addon (it has no createEngine())`);
  }
  opened.set(file, module.exports);
  return module.exports;
}

function importNode(specifier: string): Promise<unknown> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
}
