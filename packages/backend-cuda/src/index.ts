/**
 * @diff-transformer/backend-cuda — the diff-transformer kernel contract on NVIDIA GPUs through a
 * node-addon-api addon: device-resident tensors on one CUDA stream, async readback, a flash-attention kernel
 * on tensor cores for both attention kernels (both maps of differential attention in one pass). Importing
 * the package registers the backend as 'cuda'; it never throws on import. Where there is no usable GPU (no
 * addon binary, no driver, no device), the backend is registered but unavailable, and `listBackends()` /
 * `difftx info` give the reason.
 */
import { registerBackend } from '@diff-transformer/core';
import { createCudaBackend } from './backend.js';

export { createCudaBackend, type CudaBackend, type DeviceInfo } from './backend.js';
export {
  addonCandidates,
  loadAddon,
  tryLoad,
  ADDON_ENV,
  ADDON_FILE,
  BUILD_COMMAND,
  type LoadResult,
} from './loader.js';
export { FLASH_ATTENTION_HEAD_WIDTHS, FLASH_HEAD_WIDTHS, MAX_VALUE_WIDTH } from './kernels/attention.js';
export type { AttentionPlan, CudaAddon, InitResult, MemoryInfo } from './addon.js';

/** Priority of the CUDA backend in `ready()`: above webgpu (200) and cpu (100). */
export const CUDA_PRIORITY = 300;

/** Registers the backend with core as 'cuda'. Runs once on import; calling it again is harmless. */
export function register(): void {
  // The factory runs when the backend is first used; its failure becomes the 'unavailable' reason.
  registerBackend('cuda', async () => createCudaBackend(), CUDA_PRIORITY);
}

register();
