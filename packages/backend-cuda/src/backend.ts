/**
 * The CUDA backend: tensors live in device memory, every kernel is enqueued on one CUDA stream and
 * returns at once, and data comes back to the host only when a caller awaits `read` (tensor.data()).
 * Memory comes from CUDA's stream-ordered pool, so allocating an output per kernel is cheap and freeing
 * a storage that queued work still reads is safe.
 */
import type {
  Backend,
  BackendGuards,
  DType,
  GuardViolation,
  HostArray,
  KernelName,
  Kernels,
  OutputSpec,
  StorageHandle,
  Support,
} from '@diff-transformer/core';
import { BackendUnavailableError, DTypeError, sizeOf } from '@diff-transformer/core';
import type { AttentionPlan, CudaAddon, InitResult, MemoryInfo } from './addon.js';
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
  /** The same, with the key splits and pipeline stages it would use (causal, the whole cache visible). */
  attentionPlan(
    q: { shape: readonly number[]; dtype: DType },
    k: { shape: readonly number[] },
    v: { shape: readonly number[] },
    diff: boolean,
  ): AttentionPlan;
  /** 'simt' routes all attention to the SIMT kernel (to compare it with the tensor-core one); 'auto' restores. */
  setAttentionPath(mode: 'auto' | 'simt'): void;
  /** Guard mode, for tests: 256 bytes of canaries around every allocation from the pool. */
  readonly guards: BackendGuards;
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
  const guards = cudaGuards(addon);

  const allocate = (size: number, dtype: DType, what: string): CudaStorage => {
    const bytes = byteSize(size, dtype);
    let pointer = 0;
    try {
      if (guards.enabled) pointer = guards.allocate(size, dtype, bytes);
      else if (bytes > 0) pointer = addon.alloc(bytes);
    } catch (error) {
      throw toDeviceError(error, what);
    }
    const storage: CudaStorage = { pointer, size, dtype };
    live.add(storage);
    return storage;
  };
  const release = (storage: CudaStorage): void => {
    if (!live.delete(storage)) return; // a second free of one handle is harmless
    if (!guards.free(storage.pointer) && storage.pointer !== 0) addon.free(storage.pointer);
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

  const attentionPlan: CudaBackend['attentionPlan'] = (q, k, v, diff) => {
    const view = (shape: readonly number[], dtype: DType) => ({
      storage: { pointer: 0, size: 0, dtype },
      shape,
      dtype,
    });
    const attrs = { causal: true, keyOffset: 0, keyLength: k.shape[1], scale: 1, norm: null };
    const lambda = diff ? view([q.shape[2] / 2], 'float32') : null;
    const params = attentionParams(
      view(q.shape, q.dtype),
      view(k.shape, q.dtype),
      view(v.shape, q.dtype),
      lambda,
      null,
      attrs,
      0,
      diff,
    );
    return addon.attentionPlan(params);
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
      // Device memory the caller still holds goes back to the pool first, so the pool can return it to the
      // driver; those storages are unusable afterwards, like everything else of a disposed backend.
      for (const storage of [...live]) {
        try {
          release(storage);
        } catch {
          // a device already lost: nothing left to free
        }
      }
      live.clear();
      addon.dispose();
    },

    memoryInfo(): MemoryInfo {
      return addon.memoryInfo();
    },

    attentionPath: (q, k, v, diff) => attentionPlan(q, k, v, diff).path,
    attentionPlan,

    setAttentionPath(mode) {
      addon.setAttentionPath(mode);
    },

    get liveStorages(): number {
      return live.size;
    },

    guards: {
      enable: (on: boolean) => guards.enable(on),
      get enabled() {
        return guards.enabled;
      },
      async check() {
        try {
          return await guards.check();
        } catch (error) {
          throw toDeviceError(error, 'guard check');
        }
      },
    },
  };
}

/** Bytes of canaries on each side of a guarded storage: the pool's 256-byte alignment is kept. */
const GUARD_BYTES = 256;
/** The canary word: a signalling-NaN bit pattern that no kernel computes (written and read as int32). */
const CANARY = 0x7fa5a5a5;
const INT32 = dtypeCode('int32');

interface GuardedAllocation {
  /** What cudaMallocAsync returned; the tensor starts GUARD_BYTES later. */
  readonly base: number;
  readonly bytes: number;
  readonly size: number;
  readonly dtype: DType;
}

/**
 * Guard mode on the stream-ordered pool: each storage is allocated with 256 bytes of canaries before it
 * and after its last byte (written by stream-ordered uploads), so a kernel that writes outside it
 * changes them; check() reads them back once the stream has drained.
 */
function cudaGuards(addon: CudaAddon) {
  let enabled = false;
  const live = new Map<number, GuardedAllocation>();
  const held: GuardedAllocation[] = [];
  const canaries = new Int32Array(GUARD_BYTES / 4).fill(CANARY);
  const arm = (g: GuardedAllocation) => {
    addon.upload(g.base, canaries, INT32);
    addon.upload(g.base + GUARD_BYTES + g.bytes, canaries, INT32);
  };
  const releaseHeld = () => {
    for (const g of held.splice(0)) addon.free(g.base);
  };
  return {
    get enabled() {
      return enabled;
    },
    enable(on: boolean) {
      enabled = on;
      if (!on) releaseHeld();
    },
    /** A guarded allocation for a storage of `bytes`; returns the tensor's pointer. */
    allocate(size: number, dtype: DType, bytes: number): number {
      const base = addon.alloc(bytes + 2 * GUARD_BYTES);
      const guarded = { base, bytes, size, dtype };
      arm(guarded);
      live.set(base + GUARD_BYTES, guarded);
      return base + GUARD_BYTES;
    },
    /** Frees a guarded storage by its pointer (held back while guard mode is on); false if not guarded. */
    free(pointer: number): boolean {
      const guarded = live.get(pointer);
      if (!guarded) return false;
      live.delete(pointer);
      if (enabled) held.push(guarded);
      else addon.free(guarded.base);
      return true;
    },
    async check(): Promise<GuardViolation[]> {
      await addon.synchronize();
      const violations: GuardViolation[] = [];
      const inspect = async (g: GuardedAllocation) => {
        for (const [side, at] of [
          ['before', g.base],
          ['after', g.base + GUARD_BYTES + g.bytes],
        ] as const) {
          const words = await addon.read(at, GUARD_BYTES / 4, INT32);
          const spoiled = Array.from(words).filter((word) => word !== CANARY).length;
          if (spoiled > 0) violations.push({ size: g.size, dtype: g.dtype, side, words: spoiled });
        }
      };
      const checkedHeld = held.splice(0);
      for (const g of [...live.values(), ...checkedHeld]) await inspect(g);
      for (const g of live.values()) arm(g);
      for (const g of checkedHeld) addon.free(g.base);
      return violations;
    },
  };
}
