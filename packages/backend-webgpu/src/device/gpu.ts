/**
 * Finding a WebGPU implementation, without importing anything Node-specific at the top level:
 *   - any runtime with `navigator.gpu` (browsers, workers, Deno) uses it;
 *   - Node uses Dawn's binding, `dawn.node`, found in this order:
 *       1. the `dawnNodePath` option, or the DIFFTX_DAWN_NODE environment variable (a path to dawn.node);
 *       2. `dawn.node` next to this module (for the bundled CLI: next to the bundle), or next to the
 *          main script;
 *       3. the optional dependency `webgpu` (npm), which ships dawn.node for each platform.
 * Every failure becomes BackendUnavailableError with the reason and what to do, so the registry can
 * list the backend as unavailable instead of crashing.
 */
import { BackendUnavailableError } from '@diff-transformer/core';

export const BACKEND_NAME = 'webgpu';

/** Where the GPU object came from, for the device description. */
export interface GpuSource {
  readonly gpu: GPU;
  readonly via: string;
}

/** What the Node side of a caller may set; never read in a browser. */
export interface GpuSourceOptions {
  /** A path to dawn.node; beats DIFFTX_DAWN_NODE and the automatic search. */
  readonly dawnNodePath?: string;
  /** Dawn toggles passed to `create()`, e.g. ['backend=vulkan']. */
  readonly dawnFlags?: readonly string[];
}

/** The environment variable that names dawn.node explicitly. */
const DAWN_NODE_ENV = 'DIFFTX_DAWN_NODE';

/** The Vulkan ICD that makes Dawn run on SwiftShader (Debian's chromium package ships it). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

interface NodeProcess {
  versions?: { node?: string };
  env: Record<string, string | undefined>;
  argv: string[];
  platform: string;
  arch: string;
}

function nodeProcess(): NodeProcess | null {
  const p = (globalThis as { process?: NodeProcess }).process;
  return typeof p?.versions?.node === 'string' ? p : null;
}

/** The GPU object of this runtime, or BackendUnavailableError saying why there is none. */
export async function findGpu(options: GpuSourceOptions = {}): Promise<GpuSource> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, via: 'navigator.gpu' };
  const node = nodeProcess();
  if (!node) {
    throw new BackendUnavailableError(
      BACKEND_NAME,
      'this runtime has no WebGPU (navigator.gpu is missing); ' +
        'use a browser with WebGPU enabled, or Node with the `webgpu` package',
    );
  }
  if (node.platform === 'linux' && !(await vulkanDriverListed(node))) {
    // Dawn reaches GPUs through Vulkan on Linux. Without a driver it finds no adapter, and its native code
    // prints a warning on stderr first; saying why up front is faster and keeps stderr clean.
    throw new BackendUnavailableError(
      BACKEND_NAME,
      `no Vulkan driver is installed (no ICD file in ${VULKAN_ICD_DIRECTORIES.join(', ')} or the XDG directories, ` +
        `and VK_ICD_FILENAMES / VK_DRIVER_FILES are unset); install your GPU's Vulkan driver, or use SwiftShader ` +
        `on a machine without a GPU: VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (Debian packages chromium and libvulkan1)`,
    );
  }
  return loadDawn(node, options);
}

/** Where the Vulkan loader looks for driver manifests (ICD JSON files) on Linux, besides XDG paths. */
const VULKAN_ICD_DIRECTORIES = [
  '/etc/vulkan/icd.d',
  '/usr/local/etc/vulkan/icd.d',
  '/usr/local/share/vulkan/icd.d',
  '/usr/share/vulkan/icd.d',
];

/** Whether the Vulkan loader would find any driver: an explicit list in the environment, or a manifest. */
async function vulkanDriverListed(node: NodeProcess): Promise<boolean> {
  const env = node.env;
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES || env.VK_ADD_DRIVER_FILES) return true;
  const { readdirSync } = await import('node:fs');
  const home = env.HOME ?? '';
  const xdg = [
    env.XDG_CONFIG_HOME ?? `${home}/.config`,
    ...(env.XDG_CONFIG_DIRS ?? '/etc/xdg').split(':'),
    env.XDG_DATA_HOME ?? `${home}/.local/share`,
    ...(env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share').split(':'),
  ].map((dir) => `${dir}/vulkan/icd.d`);
  for (const dir of [...VULKAN_ICD_DIRECTORIES, ...xdg]) {
    try {
      if (readdirSync(dir).some((f) => f.endsWith('.json'))) return true;
    } catch {
      // No such directory: keep looking.
    }
  }
  return false;
}

async function loadDawn(node: NodeProcess, options: GpuSourceOptions): Promise<GpuSource> {
  // Dynamic imports: browser bundles never reach this code and bundlers leave these external.
  const { createRequire } = await import('node:module');
  const { existsSync } = await import('node:fs');
  const { dirname, join, resolve } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const require = createRequire(import.meta.url);
  const flags = [...(options.dawnFlags ?? [])];

  const explicit = options.dawnNodePath ?? node.env[DAWN_NODE_ENV];
  if (explicit) {
    const path = resolve(explicit);
    if (!existsSync(path)) {
      throw new BackendUnavailableError(
        BACKEND_NAME,
        `dawn.node not found at ${path} (from ${options.dawnNodePath ? 'the dawnNodePath option' : DAWN_NODE_ENV})`,
      );
    }
    return { gpu: createFrom(require(path), path, flags), via: `dawn.node (${path})` };
  }

  const candidates: string[] = [];
  try {
    candidates.push(join(dirname(fileURLToPath(import.meta.url)), 'dawn.node'));
  } catch {
    // import.meta.url is not a file URL (e.g. a data: module): nothing to look beside.
  }
  if (node.argv[1]) candidates.push(join(dirname(resolve(node.argv[1])), 'dawn.node'));
  for (const path of candidates) {
    if (existsSync(path)) return { gpu: createFrom(require(path), path, flags), via: `dawn.node (${path})` };
  }

  let binding: DawnBinding;
  try {
    binding = (await import(/* @vite-ignore */ 'webgpu' as string)) as DawnBinding;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new BackendUnavailableError(
      BACKEND_NAME,
      `Dawn's Node binding is not installed (${why}); install the optional dependency \`webgpu\` (npm i webgpu), ` +
        `or put dawn.node next to the script or name it in ${DAWN_NODE_ENV} (looked in ${candidates.join(', ')})`,
      cause,
    );
  }
  return { gpu: createFrom(binding, 'the webgpu package', flags), via: 'Dawn (webgpu package)' };
}

interface DawnBinding {
  create(flags: string[]): GPU;
}

function createFrom(binding: unknown, where: string, flags: string[]): GPU {
  const create = (binding as Partial<DawnBinding>)?.create;
  if (typeof create !== 'function') {
    throw new BackendUnavailableError(BACKEND_NAME, `${where} does not export create(): not a Dawn Node binding`);
  }
  try {
    return create(flags);
  } catch (cause) {
    throw new BackendUnavailableError(
      BACKEND_NAME,
      `Dawn failed to start: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause,
    );
  }
}

/** Why requestAdapter() gave nothing, with what to try. */
export function noAdapterReason(via: string): string {
  const node = nodeProcess();
  if (!node)
    return `${via}.requestAdapter() returned null: WebGPU is disabled or no GPU adapter is available in this browser`;
  const icd = node.env.VK_ICD_FILENAMES ?? node.env.VK_DRIVER_FILES;
  return (
    `no WebGPU adapter: Dawn found no usable GPU driver${icd ? ` (Vulkan drivers from ${icd})` : ''}; ` +
    `on a machine without a GPU, SwiftShader works: VK_ICD_FILENAMES=${SWIFTSHADER_ICD} ` +
    '(Debian packages chromium and libvulkan1)'
  );
}
