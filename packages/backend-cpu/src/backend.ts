/**
 * The CPU backend. Its engine is chosen once, when it is created:
 *   native             the C kernels compiled for this CPU (AVX-512, AVX2+FMA or baseline, by CPUID)
 *                      on a pool of native threads: Node on Linux x64/arm64, where the addon loads
 *   wasm-relaxed-simd  WebAssembly with relaxed SIMD (fused multiply-add), on a pool of threads
 *   wasm-simd128       WebAssembly SIMD128, on a pool of threads
 *   typescript         scalar TypeScript on the calling thread: where WebAssembly SIMD is missing
 * The WebAssembly engines run on `threads` threads where memory can be shared (Node; browsers in a
 * cross-origin-isolated page) and on one elsewhere.
 */
import type {
  AttentionWithStatistics,
  Backend,
  BackendGuards,
  DType,
  HostArray,
  Kernels,
  StorageHandle,
} from '@diff-transformer/core';
import { BackendUnavailableError, DeviceError } from '@diff-transformer/core';
import type { Engine, EngineName } from './engines/engine.js';
import { ENGINES } from './engines/engine.js';
import { createNativeEngine } from './engines/native.js';
import { createTypeScriptEngine } from './engines/typescript.js';
import { createWebAssemblyEngine } from './engines/webassembly.js';
import type { HeapStats } from './heap/heap.js';
import type { ThreadStats } from './threads/pool.js';
import { CPU_DTYPES, assertStorable } from './storage.js';
import { canShareMemory, hardwareThreads } from './threads/platform.js';
import { ISAS, type Isa, loadNativeAddon } from './native/loader.js';
import { supportedFlavours } from './wasm/loader.js';

export type { EngineName } from './engines/engine.js';
export type { Isa } from './native/loader.js';
export type { HeapStats } from './heap/heap.js';
export type { ThreadStats } from './threads/pool.js';

export interface CpuBackendOptions {
  /**
   * Which engine runs the kernels; 'auto' (the default) takes native where its addon loads (Node on
   * Linux x64 and arm64), else the first of wasm-relaxed-simd,
   * wasm-simd128, typescript that this JavaScript engine supports, and typescript (with a warning)
   * where WebAssembly validates but may not be compiled (a Content-Security-Policy without
   * 'wasm-unsafe-eval'). Naming one it does not support fails with the reason (Node 20 validates
   * relaxed SIMD only with --experimental-wasm-relaxed-simd).
   */
  readonly engine?: 'auto' | EngineName;
  /**
   * The native engine's best instruction set to use: 'avx512', 'avx2' or 'baseline' (default: the
   * best this CPU runs, by CPUID, or $DIFFTX_CPU_ISA). A lower one than the CPU has is for comparing
   * them; a higher one gives the best the CPU has.
   */
  readonly isa?: Isa;
  /**
   * Threads that run kernels, the calling thread included; default: the machine's hardware threads.
   * 1 runs everything on the calling thread. The TypeScript engine always uses one.
   */
  readonly threads?: number;
  /**
   * Whether the WebAssembly memory is shared with worker threads; default: wherever it can be.
   * false gives what a page without cross-origin isolation gets: an unshared memory, one thread.
   */
  readonly sharedMemory?: boolean;
}

export interface CpuBackend extends Backend {
  readonly name: 'cpu';
  /** Every kernel of the contract, inference and training. */
  readonly kernels: Kernels;
  /** The engine that runs the kernels. */
  readonly engine: EngineName;
  /**
   * Why this engine runs: the native engine's instruction set and how it was chosen, or why the
   * native engine is not running (no addon for this platform, the addon not found, …).
   */
  readonly engineReason: string;
  /** Threads that run kernels, the calling thread included. */
  readonly threads: number;
  /**
   * Whether the WebAssembly heap is a shared memory: false for the TypeScript engine, with
   * `sharedMemory: false`, and where SharedArrayBuffer is missing (a page not cross-origin isolated).
   */
  readonly sharedMemory: boolean;
  /** Storages this backend handed out (uploads, zeros, kernel outputs) and has not been asked to free. */
  readonly liveStorages: number;
  /**
   * The WebAssembly heap's use in bytes: in live blocks (tensors and kernel scratch), the peak of
   * that since the last resetHeapPeak(), and the memory's size. null for the TypeScript engine.
   */
  heapStats(): HeapStats | null;
  resetHeapPeak(): void;
  /**
   * What the thread pool has run since the backend was created: the phases that woke the workers,
   * the tasks of every phase, and how many of those the worker threads claimed. All zero on one thread.
   */
  threadStats(): ThreadStats;
  /** Stops the worker threads. The backend must not be used afterwards. */
  dispose(): void;
  /** Guard mode, for tests: canaries around the storages in the heap (or the typed arrays). */
  readonly guards: BackendGuards;
}

export async function createCpuBackend(options: CpuBackendOptions = {}): Promise<CpuBackend> {
  const { engine, reason } = await createEngine(options);
  return backendOf(engine, reason);
}

/** The Backend object core sees, around an engine (tests wrap engines whose kernels they break). */
export function backendOf(engine: Engine, engineReason = 'chosen by the caller'): CpuBackend {
  // Storages not yet freed. A set (rather than a bare counter) makes a repeated free of one handle harmless.
  const live = new Set<StorageHandle>();
  const track = (storage: StorageHandle): StorageHandle => {
    live.add(storage);
    return storage;
  };
  const kernels = engine.kernels;
  // Every kernel but cacheWrite and adamw returns new storages; count each like an upload.
  const counted =
    <A extends unknown[]>(kernel: (...args: A) => StorageHandle) =>
    (...args: A): StorageHandle =>
      track(guardMemory(() => kernel(...args)));
  // Kernels with several outputs return an object of handles (null where an output is absent).
  const trackAll = <T extends object>(outputs: T): T => {
    for (const handle of Object.values(outputs)) if (handle !== null) track(handle);
    return outputs;
  };
  const countedAll =
    <A extends unknown[], R extends object>(kernel: (...args: A) => R) =>
    (...args: A): R =>
      trackAll(guardMemory(() => kernel(...args)));
  const withStatistics =
    <A extends unknown[]>(kernel: (...args: A) => AttentionWithStatistics) =>
    (...args: A): AttentionWithStatistics => {
      const r = guardMemory(() => kernel(...args));
      track(r.output);
      trackAll(r.statistics);
      return r;
    };
  const threads = engine.threads === 1 ? '1 thread' : `${engine.threads} threads`;
  let disposed = false;

  return {
    name: 'cpu',
    device: `CPU (${DESCRIPTIONS[engine.name]}${engine.detail ? ` ${engine.detail}` : ''}, ${threads}, float32)`,
    engine: engine.name,
    engineReason,
    threads: engine.threads,
    sharedMemory: engine.sharedMemory,
    dtypes: CPU_DTYPES,
    kernels: {
      matmul: counted(kernels.matmul),
      embedding: counted(kernels.embedding),
      rmsNorm: counted(kernels.rmsNorm),
      rotary: counted(kernels.rotary),
      swiglu: counted(kernels.swiglu),
      add: counted(kernels.add),
      sigmoid: counted(kernels.sigmoid),
      diffAttention: counted(kernels.diffAttention),
      attention: counted(kernels.attention),
      softmax: counted(kernels.softmax),
      argmax: counted(kernels.argmax),
      narrow: counted(kernels.narrow),
      cacheWrite: (cache, values, attrs) => guardMemory(() => kernels.cacheWrite(cache, values, attrs)),
      exp: counted(kernels.exp),
      mul: counted(kernels.mul),
      scale: counted(kernels.scale),
      sumSquares: counted(kernels.sumSquares),
      diffAttentionWithStatistics: withStatistics(kernels.diffAttentionWithStatistics),
      attentionWithStatistics: withStatistics(kernels.attentionWithStatistics),
      diffAttentionBackward: countedAll(kernels.diffAttentionBackward),
      attentionBackward: countedAll(kernels.attentionBackward),
      rmsNormBackward: countedAll(kernels.rmsNormBackward),
      swigluBackward: countedAll(kernels.swigluBackward),
      embeddingBackward: counted(kernels.embeddingBackward),
      crossEntropy: countedAll(kernels.crossEntropy),
      adamw: (param, grad, m, v, attrs) => guardMemory(() => kernels.adamw(param, grad, m, v, attrs)),
    } satisfies Kernels,

    upload(data: HostArray, dtype: DType): StorageHandle {
      assertStorable(dtype);
      return track(guardMemory(() => engine.upload(data, dtype)));
    },

    zeros(size: number, dtype: DType): StorageHandle {
      assertStorable(dtype);
      return track(guardMemory(() => engine.zeros(size, dtype)));
    },

    async read(storage: StorageHandle, _dtype: DType, size: number): Promise<HostArray> {
      return guardMemory(() => engine.read(storage, size));
    },

    free(storage: StorageHandle): void {
      // Kernels run synchronously, so no queued work can still need the storage.
      if (live.delete(storage)) engine.free(storage);
    },

    async synchronize(): Promise<void> {
      // Every kernel has finished, on every thread, when it returns.
    },

    dispose(): void {
      if (disposed) return;
      disposed = true;
      engine.dispose();
    },

    get liveStorages(): number {
      return live.size;
    },

    heapStats: () => engine.heapStats(),
    resetHeapPeak: () => engine.resetHeapPeak(),
    threadStats: () => engine.threadStats(),

    guards: {
      enable: (on: boolean) => engine.guards.enable(on),
      get enabled() {
        return engine.guards.enabled;
      },
      // Kernels have all finished when they return: the check needs no waiting.
      check: async () => engine.guards.check(),
    },
  };
}

/**
 * The heap at its limit already throws DeviceError; the JavaScript engine refusing an array (a
 * TypeScript-engine storage, a readback copy) throws RangeError, which becomes the same typed error.
 */
function guardMemory<R>(run: () => R): R {
  try {
    return run();
  } catch (error) {
    if (error instanceof RangeError && ALLOCATION_FAILED.test(error.message)) {
      throw new DeviceError(
        'cpu',
        'out-of-memory',
        `out of memory: the JavaScript engine refused an array (${error.message}); ` +
          'free tensors you no longer need (dispose(), tidy()) or use smaller shapes',
        error,
      );
    }
    throw error;
  }
}

/** V8's and other engines' messages for an array or buffer that cannot be allocated. */
const ALLOCATION_FAILED = /allocation failed|invalid (typed )?array( buffer)? length|out of memory/i;

const DESCRIPTIONS: Record<EngineName, string> = {
  native: 'native',
  'wasm-relaxed-simd': 'WebAssembly relaxed SIMD',
  'wasm-simd128': 'WebAssembly SIMD128',
  typescript: 'TypeScript',
};

async function createEngine(options: CpuBackendOptions): Promise<{ engine: Engine; reason: string }> {
  const requested = options.engine ?? 'auto';
  if (requested !== 'auto' && !ENGINES.includes(requested)) {
    throw new BackendUnavailableError(
      'cpu',
      `unknown engine ${JSON.stringify(requested)}; expected auto, ${ENGINES.join(', ')}`,
    );
  }
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) {
    throw new BackendUnavailableError('cpu', `threads: expected an integer ≥ 1, got ${options.threads}`);
  }
  let nativeMissing = 'sharedMemory: false asks for a WebAssembly heap of its own';
  if (requested === 'native' || (requested === 'auto' && options.sharedMemory !== false)) {
    if (options.isa !== undefined && !ISAS.includes(options.isa)) {
      throw new BackendUnavailableError('cpu', `isa: expected ${ISAS.join(', ')}, got ${JSON.stringify(options.isa)}`);
    }
    const native = await loadNativeAddon(options.isa);
    if (native.ok) {
      const threads = options.threads ?? (await hardwareThreads());
      try {
        const engine = createNativeEngine(native, threads);
        return { engine, reason: `native ${native.isa} (${native.why}), ${native.path}` };
      } catch (cause) {
        if (requested === 'native') throw new BackendUnavailableError('cpu', `the native engine: ${String(cause)}`);
        nativeMissing = `the native engine could not start (${String(cause)})`;
      }
    } else {
      if (requested === 'native') throw new BackendUnavailableError('cpu', native.reason);
      nativeMissing = native.reason;
    }
  }
  const engine = await createPortableEngine(options, requested === 'auto' ? 'auto' : requested);
  const reason = requested === 'auto' ? `no native engine: ${nativeMissing}` : 'chosen by the engine option';
  return { engine, reason };
}

async function createPortableEngine(
  options: CpuBackendOptions,
  requested: 'auto' | Exclude<EngineName, 'native'>,
): Promise<Engine> {
  const flavours = supportedFlavours();
  const available: EngineName[] = [
    ...flavours.map((f) => (f === 'relaxed-simd' ? 'wasm-relaxed-simd' : 'wasm-simd128') as EngineName),
    'typescript',
  ];
  const name = requested === 'auto' ? available[0] : requested;
  if (!available.includes(name)) {
    throw new BackendUnavailableError(
      'cpu',
      `engine '${name}' is not supported by this JavaScript engine (available: ${available.join(', ')})` +
        (name === 'wasm-relaxed-simd' ? '; Node 20 needs --experimental-wasm-relaxed-simd' : ''),
    );
  }
  if (name === 'typescript') return createTypeScriptEngine();
  const shared = (options.sharedMemory ?? true) && canShareMemory();
  const webassembly = createWebAssemblyEngine({
    flavour: name === 'wasm-relaxed-simd' ? 'relaxed-simd' : 'simd128',
    threads: shared ? (options.threads ?? (await hardwareThreads())) : 1,
    shared,
  });
  if (requested !== 'auto') return webassembly;
  // WebAssembly.validate accepts the binary, yet compiling it can still be refused: a page whose
  // Content-Security-Policy lacks 'wasm-unsafe-eval', or a memory the system will not reserve.
  // 'auto' then takes the TypeScript engine, as where SIMD is missing: a slower backend beats none.
  try {
    return await webassembly;
  } catch (cause) {
    console.warn(
      `backend 'cpu': the WebAssembly engine could not start (${String(cause)}); running the TypeScript engine`,
    );
    return createTypeScriptEngine();
  }
}
