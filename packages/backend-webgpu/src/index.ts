/**
 * @diff-transformer/backend-webgpu — every kernel of the diff-transformer contract in WGSL, with fused
 * streaming differential attention, for browsers (navigator.gpu) and Node (Dawn, through the optional
 * `webgpu` package or a dawn.node next to the script). Importing the package registers it as 'webgpu'.
 */
import { registerBackend } from '@diff-transformer/core';
import { createWebGPUBackend, type WebGPUBackendOptions } from './backend.js';

export { createWebGPUBackend, type WebGPUBackend, type WebGPUBackendOptions } from './backend.js';
export { WEBGPU_SOFTWARE_PRIORITY, softwareAdapterReason, type AdapterIdentity } from './device/adapter.js';
export { SWIFTSHADER_ICD } from './device/gpu.js';
export type { PipelineDebug } from './device/pipelines.js';
export type { PoolStats } from './device/pool.js';
export type { RuntimeStats } from './device/runtime.js';
export type { SplitKeysOptions } from './kernels/attention.js';

/** Priority of the WebGPU backend in `ready()`: above cpu (100), below cuda (300). */
export const WEBGPU_PRIORITY = 200;

/**
 * Registers the backend with core as 'webgpu'. Runs once on import; call it again to change the
 * options the registry creates the backend with (takes effect the next time the backend is created).
 */
export function register(options: WebGPUBackendOptions = {}): void {
  registerBackend('webgpu', () => createWebGPUBackend(options), WEBGPU_PRIORITY);
}

register();
