/**
 * Telling a software adapter from a GPU. SwiftShader, llvmpipe/lavapipe and WARP run WebGPU on the
 * CPU, far slower than the CPU backend's own kernels, so the backend ranks itself below the CPU
 * backend on one (see Backend.effectivePriority in core) and runs there only when asked for by name.
 */

/** The rank in `ready()` on a software adapter: below the CPU backend (100). */
export const WEBGPU_SOFTWARE_PRIORITY = 50;

/** Names that software rasterisers report as vendor, architecture, device or description. */
const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe|softpipe|\bwarp\b|microsoft basic render driver/i;

export interface AdapterIdentity {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** GPUAdapterInfo.isFallbackAdapter (or the older GPUAdapter.isFallbackAdapter), when reported. */
  readonly isFallbackAdapter?: boolean;
}

/** Why the adapter is a software one (a sentence fragment), or null for a hardware GPU. */
export function softwareAdapterReason(adapter: AdapterIdentity): string | null {
  const name = [adapter.description, adapter.device, adapter.vendor, adapter.architecture].find((field) =>
    SOFTWARE_NAMES.test(field),
  );
  if (!name && adapter.isFallbackAdapter !== true) return null;
  const why = [
    ...(adapter.isFallbackAdapter === true ? ['the implementation reports it as a fallback adapter'] : []),
    ...(name ? [`"${name}" is a software rasteriser`] : []),
  ].join('; ');
  return `a software adapter (${why}): the GPU is emulated on the CPU, slower than the cpu backend`;
}
