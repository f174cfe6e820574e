/**
 * The CUDA backend: tensors live in device memory, every kernel is enqueued on one CUDA stream and
 * returns at once, and data comes back to the host only when a caller awaits `read` (tensor.data()).
 * Memory comes from CUDA's stream-ordered pool, so allocating an output per kernel is cheap and freeing
 * a storage that queued work still reads is safe.
 */
import type {
  Backend,
  DType,
  HostArray,
  KernelName,
  Kernels,
  OutputSpec,
  StorageHandle,
  Support,
} from '@diff-transformer/core';
import { BackendUnavailableError, DTypeError, sizeOf } from '@diff-transformer/core';
import type { CudaAddon, InitResult, MemoryInfo } from './addon.js';
import { toDeviceError, unavailableReason } from './errors.js';
import { attentionKernels, attentionParams } from './kernels/attention.js';
import { attentionTrainingKernels } from './kernels/attention-training.js';
import type { KernelContext } from './kernels/context.js';
import { elementwiseKernels } from './kernels/elementwise.js';
import { matmulKernels } from './kernels/matmul.js';
import { memoryKernels } from './kernels/memory.js';
import { rowKernels } from './kernels/rows.js';
import { trainingElementwiseKernels } from './kernels/training.js';
import { trainingRowKernels } from './kernels/training-rows.js';
import { loadAddon, type LoadResult } from './loader.js';
import { CUDA_DTYPES, byteSize, dtypeCode, type CudaStorage } from './storage.js';

export type DeviceInfo = Extract<InitResult, { ok: true }>;

export interface CudaBackend extends Backend {
  readonly name: 'cuda';
  /** What init() found: device name, compute capability, multiprocessors, memory, driver and runtime. */
  readonly info: DeviceInfo;
  /** The .node file in use. */
  readonly addonPath: string;
  synchronize(): Promise<void>;
  /** Storages this backend handed out and has not been asked to free. */
  readonly liveStorages: number;
  /** Device memory, the pool's share of it, and cached readback buffers. */
  memoryInfo(): MemoryInfo;
  /** Which implementation diffAttention/attention would run for these inputs: 'flash' or 'rows'. */
  attentionPath(
    q: { shape: readonly number[]; dtype: DType },
    k: { shape: readonly number[] },
    v: { shape: readonly number[] },
    diff: boolean,
  ): 'flash' | 'rows';
  /** 'simt' routes all attention to the SIMT kernel (to compare it with the tensor-core one); 'auto' restores. */
  setAttentionPath(mode: 'auto' | 'simt'): void;
}

/** The kernels that accept int32 tensors (as their first input); every other kernel needs a float dtype. */
const INT32_KERNELS = new Set<KernelName>(['narrow', 'cacheWrite']);

function ensureAvailable(load: LoadResult): { addon: CudaAddon; path: string; info: DeviceInfo } {
  if (!load.ok) throw new BackendUnavailableError('cuda', load.reason);
  let init: InitResult;
  try {
    init = load.addon.init();
  } catch (error) {
    throw new BackendUnavailableError(
      'cuda',
      `CUDA initialisation threw: ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  }
  if (!init.ok) throw new BackendUnavailableError('cuda', unavailableReason(init));
  return { addon: load.addon, path: load.path, info: init };
}

/**
 * Loads the addon, initialises device 0 and returns the backend. Throws BackendUnavailableError with the
 * reason (no addon file, no driver, no device, a CUDA error) when it cannot; the registry keeps that reason.
 */
export function createCudaBackend(load: LoadResult = loadAddon()): CudaBackend {
  const { addon, path, info } = ensureAvailable(load);
  const live = new Set<CudaStorage>();

  const allocate = (size: number, dtype: DType, what: string): CudaStorage => {
    const bytes = byteSize(size, dtype);
    let pointer = 0;
    if (bytes > 0) {
      try {
        pointer = addon.alloc(bytes);
      } catch (error) {
        throw toDeviceError(error, what);
      }
    }
    const storage: CudaStorage = { pointer, size, dtype };
    live.add(storage);
    return storage;
  };
  const release = (storage: CudaStorage): void => {
    if (!live.delete(storage)) return; // a second free of one handle is harmless
    if (storage.pointer !== 0) addon.free(storage.pointer);
  };

  const context: KernelContext = {
    addon,
    output: (out: OutputSpec) => allocate(sizeOf(out.shape), out.dtype, 'kernel output'),
    launch(kernel, out, enqueue) {
      try {
        enqueue();
        return out;
      } catch (error) {
        if (out) release(out);
        throw toDeviceError(error, kernel);
      }
    },
    release,
  };
  const kernels: Kernels = {
    ...elementwiseKernels(context),
    ...rowKernels(context),
    ...matmulKernels(context),
    ...attentionKernels(context),
    ...memoryKernels(context),
    ...trainingElementwiseKernels(context),
    ...trainingRowKernels(context),
    ...attentionTrainingKernels(context),
  };

  const capability = `sm_${info.major}${info.minor}`;
  return {
    name: 'cuda',
    device:
      `${info.name} (${capability}, ${info.multiprocessors} SMs, ${(info.totalMemory / 2 ** 30).toFixed(0)} GiB, ` +
      `CUDA ${Math.floor(info.driverVersion / 1000)}.${Math.floor((info.driverVersion % 1000) / 10)} driver)`,
    info,
    addonPath: path,
    kernels,
    dtypes: CUDA_DTYPES,

    supports(kernel: KernelName, dtype: DType): Support {
      if (dtype === 'int32' && !INT32_KERNELS.has(kernel)) return `'${kernel}' needs float tensors, got int32`;
      return true;
    },

    upload(data: HostArray, dtype: DType): CudaStorage {
      if (!CUDA_DTYPES.includes(dtype)) throw new DTypeError("backend 'cuda' storage", CUDA_DTYPES.join(' | '), dtype);
      const host =
        dtype === 'int32'
          ? data instanceof Int32Array
            ? data
            : Int32Array.from(data)
          : data instanceof Float32Array
            ? data
            : Float32Array.from(data);
      const storage = allocate(host.length, dtype, 'upload');
      if (host.length === 0) return storage;
      try {
        addon.upload(storage.pointer, host, dtypeCode(dtype));
      } catch (error) {
        release(storage);
        throw toDeviceError(error, 'upload');
      }
      return storage;
    },

    zeros(size: number, dtype: DType): CudaStorage {
      const storage = allocate(size, dtype, 'zeros');
      if (storage.pointer === 0) return storage;
      try {
        addon.zero(storage.pointer, byteSize(size, dtype));
      } catch (error) {
        release(storage);
        throw toDeviceError(error, 'zeros');
      }
      return storage;
    },

    async read(storage: StorageHandle, dtype: DType, size: number): Promise<HostArray> {
      const s = storage as CudaStorage;
      if (size === 0 || s.pointer === 0) return dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
      try {
        return await addon.read(s.pointer, size, dtypeCode(dtype));
      } catch (error) {
        throw toDeviceError(error, 'read');
      }
    },

    free(storage: StorageHandle): void {
      try {
        release(storage as CudaStorage);
      } catch (error) {
        throw toDeviceError(error, 'free');
      }
    },

    async synchronize(): Promise<void> {
      try {
        await addon.synchronize();
      } catch (error) {
        throw toDeviceError(error, 'synchronize');
      }
    },

    dispose(): void {
      addon.dispose();
      live.clear();
    },

    memoryInfo(): MemoryInfo {
      return addon.memoryInfo();
    },

    attentionPath(q, k, v, diff) {
      const view = (shape: readonly number[], dtype: DType) => ({
        storage: { pointer: 0, size: 0, dtype },
        shape,
        dtype,
      });
      const attrs = { causal: true, keyOffset: 0, keyLength: k.shape[1], scale: 1, norm: null };
      const lambda = diff ? view([q.shape[2] / 2], 'float32') : null;
      return addon.attentionPath(
        attentionParams(
          view(q.shape, q.dtype),
          view(k.shape, q.dtype),
          view(v.shape, q.dtype),
          lambda,
          null,
          attrs,
          0,
          diff,
        ),
      );
    },

    setAttentionPath(mode) {
      addon.setAttentionPath(mode);
    },

    get liveStorages(): number {
      return live.size;
    },
  };
}
