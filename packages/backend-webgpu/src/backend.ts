/**
 * The WebGPU backend object: storage on the device, every kernel of the contract as a WGSL compute
 * program, float32 and int32 storage. Kernels record into the runtime's pending batch and return at
 * once; `read` (tensor.data()) and `synchronize` submit and wait. See ./device/runtime.ts.
 */
import type {
  Backend,
  BackendGuards,
  DType,
  HostArray,
  KernelName,
  Kernels,
  StorageHandle,
  Support,
} from '@diff-transformer/core';
import { ArgumentError, BackendUnavailableError, DTypeError } from '@diff-transformer/core';
import { WEBGPU_SOFTWARE_PRIORITY, softwareAdapterReason } from './device/adapter.js';
import { BACKEND_NAME, findGpu, noAdapterReason, type GpuSourceOptions } from './device/gpu.js';
import type { PoolStats } from './device/pool.js';
import { Runtime, type RuntimeOptions, type RuntimeStats } from './device/runtime.js';
import { GpuStorage } from './device/storage.js';
import * as attentionKernels from './kernels/attention.js';
import type { SplitKeysOptions } from './kernels/attention.js';
import * as backward from './kernels/attention-backward.js';
import * as elementwise from './kernels/elementwise.js';
import * as gather from './kernels/gather.js';
import * as matmulKernels from './kernels/matmul.js';
import { sumSquares } from './kernels/reduce.js';
import * as rows from './kernels/rows.js';
import { LARGE_TILE, LARGE_VEC4_TILE } from './shaders/matmul.js';

const WEBGPU_DTYPES = ['float32', 'int32'] as const satisfies readonly DType[];

export interface WebGPUBackendOptions extends GpuSourceOptions, RuntimeOptions {
  /** Passed to requestAdapter. Default 'high-performance'. */
  readonly powerPreference?: 'low-power' | 'high-performance';
  /**
   * 'adapter' (default): ask for the adapter's own limits where larger ones help. 'default': WebGPU's
   * default limits, which every adapter offers (16 KiB of workgroup memory, 8 storage buffers per
   * stage): for checking that every kernel fits them.
   */
  readonly limits?: 'adapter' | 'default';
  /** When decoding splits the keys of attention across workgroups. */
  readonly splitKeys?: SplitKeysOptions;
  /**
   * The tile of large matmuls (M, N ≥ 512): 'large-vec4' (default; vec4 workgroup memory) or 'large'
   * (scalar), for comparing the two on a GPU. In Node, DIFFTX_WEBGPU_LARGE_TILE sets the default.
   */
  readonly largeMatmulTile?: 'large' | 'large-vec4';
  /**
   * A GPU to use instead of finding one (navigator.gpu, or Dawn's `create()` result). Typed loosely
   * so that this package's declarations need no WebGPU types.
   */
  readonly gpu?: unknown;
}

export interface WebGPUBackend extends Backend {
  readonly name: 'webgpu';
  /** The adapter: vendor, architecture, device and description as the implementation reports them. */
  readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  /**
   * Why the adapter is a software one (SwiftShader, llvmpipe, WARP: the GPU emulated on the CPU), or
   * null for a hardware GPU. On a software adapter the backend ranks itself below the CPU backend.
   */
  readonly softwareAdapter: string | null;
  /** Where the implementation came from: 'navigator.gpu', 'Dawn (webgpu package)', 'dawn.node (path)'. */
  readonly via: string;
  /** The adapter has 'shader-f16' (not used yet: storage is float32 and int32). */
  readonly hasShaderF16: boolean;
  /** Submits, dispatches, pipeline cache use, deferred frees, live storages. */
  readonly stats: Readonly<RuntimeStats>;
  /** Buffer pool counters (storage, readback staging, uniform arenas). */
  poolStats(): { storage: PoolStats; staging: PoolStats; uniform: PoolStats };
  /** Submits recorded work without waiting for it. */
  flush(): void;
  synchronize(): Promise<void>;
  dispose(): Promise<void>;
  /** Destroys the GPU device as a driver reset would; every later call throws DeviceError (tests). */
  loseDevice(): void;
  /** The WebGPU limits the device was created with. */
  readonly limits: Readonly<Record<string, number>>;
  /** Guard mode, for tests: canaries around every pooled buffer's tensor, read back by check(). */
  readonly guards: BackendGuards;
  /**
   * The key and WGSL source of every pipeline compiled so far, in compile order (to read a kernel's
   * generated shader; DIFFTX_DEBUG_WGSL prints them as they compile).
   */
  pipelineSources(): Array<{ key: string; wgsl: string }>;
}

/** The limits to ask for: the adapter's own, where larger buffers or more workgroup memory help. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxStorageBuffersPerShaderStage',
] as const;

export async function createWebGPUBackend(options: WebGPUBackendOptions = {}): Promise<WebGPUBackend> {
  const source = options.gpu ? { gpu: options.gpu as GPU, via: 'the gpu option' } : await findGpu(options);
  let adapter: GPUAdapter | null;
  try {
    adapter = await source.gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  } catch (cause) {
    throw new BackendUnavailableError(
      BACKEND_NAME,
      `requestAdapter() failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause,
    );
  }
  if (!adapter) throw new BackendUnavailableError(BACKEND_NAME, noAdapterReason(source.via));

  const requiredLimits: Record<string, number> = {};
  for (const name of options.limits === 'default' ? [] : WANTED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, label: 'diff-transformer' });
  } catch (cause) {
    throw new BackendUnavailableError(
      BACKEND_NAME,
      `requestDevice() failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause,
    );
  }

  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const adapterInfo = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
  };
  const software = softwareAdapterReason({
    ...adapterInfo,
    isFallbackAdapter:
      (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  });
  const rt = new Runtime(device, options);
  const split = options.splitKeys ?? {};
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const largeTileName = options.largeMatmulTile ?? env?.DIFFTX_WEBGPU_LARGE_TILE ?? 'large-vec4';
  if (largeTileName !== 'large' && largeTileName !== 'large-vec4') {
    throw new ArgumentError('largeMatmulTile (or DIFFTX_WEBGPU_LARGE_TILE)', "'large' | 'large-vec4'", largeTileName);
  }
  const largeTile = largeTileName === 'large' ? LARGE_TILE : LARGE_VEC4_TILE;
  // Keeps the GPU object (Dawn's instance) alive as long as the backend.
  const gpu = source.gpu;

  const table: Kernels = {
    matmul: (a, b, attrs, out) => matmulKernels.matmul(rt, a, b, attrs, out, undefined, largeTile),
    embedding: (t, ids, attrs, out) => gather.embedding(rt, t, ids, attrs, out),
    rmsNorm: (x, w, attrs, out) => rows.rmsNorm(rt, x, w, attrs, out),
    rotary: (x, c, s, attrs, out) => gather.rotary(rt, x, c, s, attrs, out),
    swiglu: (g, u, attrs, out) => elementwise.swiglu(rt, g, u, attrs, out),
    add: (a, b, attrs, out) => elementwise.add(rt, a, b, attrs, out),
    sigmoid: (x, attrs, out) => elementwise.sigmoid(rt, x, attrs, out),
    diffAttention: (q, k, v, l, w, attrs, out) =>
      attentionKernels.diffAttention(rt, split, q, k, v, l, w, attrs, out).output,
    attention: (q, k, v, attrs, out) => attentionKernels.attention(rt, split, q, k, v, attrs, out).output,
    softmax: (x, attrs, out) => rows.softmax(rt, x, attrs, out),
    argmax: (x, attrs, out) => rows.argmax(rt, x, attrs, out),
    narrow: (x, attrs, out) => gather.narrow(rt, x, attrs, out),
    cacheWrite: (cache, values, attrs) => gather.cacheWrite(rt, cache, values, attrs),
    exp: (x, attrs, out) => elementwise.exp(rt, x, attrs, out),
    mul: (a, b, attrs, out) => elementwise.mul(rt, a, b, attrs, out),
    scale: (x, attrs, out) => elementwise.scale(rt, x, attrs, out),
    sumSquares: (x, attrs, out) => sumSquares(rt, x, attrs, out),
    diffAttentionWithStatistics: (q, k, v, l, w, attrs, out, statistics) =>
      attentionKernels.diffAttention(rt, split, q, k, v, l, w, attrs, out, statistics),
    attentionWithStatistics: (q, k, v, attrs, out, statistics) =>
      attentionKernels.attention(rt, split, q, k, v, attrs, out, statistics),
    diffAttentionBackward: (q, k, v, l, w, statistics, dOut, attrs, out) =>
      backward.diffAttentionBackward(rt, q, k, v, l, w, statistics, dOut, attrs, out),
    attentionBackward: (q, k, v, output, statistics, dOut, attrs, out) =>
      backward.attentionBackward(rt, q, k, v, output, statistics, dOut, attrs, out),
    rmsNormBackward: (x, w, dy, attrs, out) => rows.rmsNormBackward(rt, x, w, dy, attrs, out),
    swigluBackward: (g, u, dy, attrs, out) => elementwise.swigluBackward(rt, g, u, dy, attrs, out),
    embeddingBackward: (ids, dy, attrs, out) => gather.embeddingBackward(rt, ids, dy, attrs, out),
    crossEntropy: (logits, targets, attrs, out) => rows.crossEntropy(rt, logits, targets, attrs, out),
    adamw: (param, grad, m, v, attrs) => elementwise.adamw(rt, param, grad, m, v, attrs),
  };

  const description = [adapterInfo.description || adapterInfo.device, adapterInfo.vendor, adapterInfo.architecture]
    .filter(Boolean)
    .join(', ');
  const backend: WebGPUBackend = {
    name: 'webgpu',
    device:
      `WebGPU (${description || 'unknown adapter'}; ${source.via}; ` +
      `float32${largeTileName === 'large' ? '; scalar large matmul tile' : ''}` +
      `${software ? '; software adapter' : ''})`,
    kernels: table,
    softwareAdapter: software,
    ...(software
      ? {
          effectivePriority: {
            value: WEBGPU_SOFTWARE_PRIORITY,
            reason: `${software}; ask for it by name (setBackend('webgpu'), --backend webgpu) to use it anyway`,
          },
        }
      : {}),
    dtypes: WEBGPU_DTYPES,
    adapterInfo,
    via: source.via,
    hasShaderF16: adapter.features.has('shader-f16'),
    limits: Object.fromEntries(
      WANTED_LIMITS.map((name) => [name, (device.limits as unknown as Record<string, number>)[name]]),
    ),

    supports(_kernel: KernelName, dtype: DType): Support {
      return dtype === 'float32' || dtype === 'int32'
        ? true
        : `the WebGPU backend stores float32 and int32, not ${dtype}`;
    },

    upload(data: HostArray, dtype: DType): StorageHandle {
      assertStorable(dtype);
      const typed =
        dtype === 'int32'
          ? data instanceof Int32Array
            ? data
            : Int32Array.from(data)
          : data instanceof Float32Array
            ? data
            : Float32Array.from(data);
      return rt.upload(typed, dtype);
    },

    zeros(size: number, dtype: DType): StorageHandle {
      assertStorable(dtype);
      return rt.zeros(size * 4, dtype);
    },

    async read(storage: StorageHandle, dtype: DType, size: number): Promise<HostArray> {
      const bytes = await rt.read(storage as GpuStorage, size * 4);
      return dtype === 'int32' ? new Int32Array(bytes) : new Float32Array(bytes);
    },

    free(storage: StorageHandle): void {
      if (storage instanceof GpuStorage) rt.free(storage);
    },

    flush: () => rt.flush(),
    synchronize: () => rt.synchronize(),
    async dispose(): Promise<void> {
      await rt.dispose();
      void gpu;
    },
    loseDevice: () => rt.simulateDeviceLoss(),
    guards: {
      enable: (on: boolean) => rt.enableGuards(on),
      get enabled() {
        return rt.guarding;
      },
      check: () => rt.checkGuards(),
    },
    get stats() {
      return rt.stats;
    },
    poolStats: () => rt.poolStats(),
    pipelineSources: () => rt.pipelineSources(),
  };
  return backend;
}

function assertStorable(dtype: DType): void {
  if (dtype !== 'float32' && dtype !== 'int32')
    throw new DTypeError("backend 'webgpu' storage", WEBGPU_DTYPES.join(' | '), dtype);
}
