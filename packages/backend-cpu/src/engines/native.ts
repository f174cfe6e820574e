/**
 * The native engine (Node on Linux x64 and arm64): the same C kernels as the WebAssembly engine,
 * compiled for this CPU's instruction set (../native/loader.ts picks AVX-512, AVX2+FMA or the
 * baseline by CPUID), run on the addon's pool of native threads. Tensors live in the addon's heap, a
 * block of native memory the same allocator manages as the WebAssembly heap, so the kernels that stay
 * TypeScript (embedding, softmax, argmax, …) read and write it through typed arrays as they do there;
 * the kernel table over that heap is ../c-kernels/engine.ts, shared with the WebAssembly engine.
 *
 * Matmul keeps B packed for the micro-kernel (native/matmul.c) when the same B comes back unchanged,
 * as onnxruntime pre-packs its weights: see PackedWeights.
 */
import type { MatmulAttrs, OutputSpec, TensorView } from '@diff-transformer/core';
import { matmulDims, sizeOf } from '@diff-transformer/core';
import type { KernelPool } from '../c-kernels/bindings.js';
import { cKernelEngine } from '../c-kernels/engine.js';
import { type HeapStorage, KernelHeap } from '../heap/heap.js';
import type { NativeEngineHandle } from '../native/addon.js';
import type { NativeLoad } from '../native/loader.js';
import { MATMUL_FLAGS } from '../c-kernels/entry-points.js';
import type { Engine } from './engine.js';

const ISA_NAMES = { avx512: 'AVX-512', avx2: 'AVX2', baseline: 'baseline' } as const;
/** Below this many floating-point operations a matmul runs on the calling thread alone. */
const PARALLEL_FLOPS = 1 << 20;
/** Packed copies kept at most, in bytes: past it, further weights are packed on every call. */
const PACKED_BUDGET = 2 ** 30;

export function createNativeEngine(
  native: Extract<NativeLoad, { ok: true }>,
  threads: number,
): Engine & { readonly heap: KernelHeap } {
  const handle = native.addon.createEngine(threads);
  const memory = {
    buffer: handle.buffer,
    // The whole address space is the buffer from the start: the allocator's top never passes it.
    grow(): number {
      throw new RangeError('the native heap cannot grow past its reserved address space');
    },
  };
  const heap = new KernelHeap(memory, handle.heapBase, handle.maximumBytes, true);
  // The engine's Job: every kernel call of this engine prepares and runs in it (c/job.h).
  const jobBytes = handle.job_bytes();
  const job = heap.allocate(jobBytes);
  new Uint8Array(handle.buffer, job, jobBytes).fill(0);
  const pool: KernelPool = {
    threads: handle.threads,
    job,
    run: (tasks, parallel) => handle.run(job, tasks, parallel),
  };
  const packed = new PackedWeights(heap, handle, pool);
  return cKernelEngine({
    name: 'native',
    detail: native.isa === 'baseline' && process.arch === 'arm64' ? 'NEON' : ISA_NAMES[native.isa],
    heap,
    pool,
    exports: handle,
    sharedMemory: true,
    threadStats: () => handle.stats(),
    dispose: () => handle.dispose(),
    overrides: () => ({
      matmul: (a, b, attrs, out) => packed.matmul(a, b, attrs, out),
    }),
    written: (storage) => packed.written(storage),
    freeing: (storage) => packed.forget(storage),
  });
}

interface PackedEntry {
  /** The packing's layout: B transposed or not, shared or batched, N, K. */
  readonly key: string;
  /** The storage's write count when it was seen; a write (cacheWrite, adamw) makes the entry stale. */
  readonly version: number;
  uses: number;
  /** The packed copy, once the same B came back a second time; 0 before. */
  block: number;
  bytes: number;
}

/**
 * Matmul's B operand packed once and reused. A storage's contents change only through the kernels
 * that write in place (cacheWrite, adamw: core bumps `tensor.version` for the same two), so the engine
 * counts those writes per storage and an entry is valid while its count is unchanged; freeing the
 * storage drops its entry (its offset may be handed out again). A B seen once (an activation) is
 * packed into scratch as usual; the second call with the same unchanged B (a weight, the next token or
 * the next forward) packs it into a block of its own that later calls read directly.
 */
class PackedWeights {
  readonly #versions = new WeakMap<HeapStorage, number>();
  readonly #entries = new Map<HeapStorage, PackedEntry>();
  #bytes = 0;

  constructor(
    private readonly heap: KernelHeap,
    private readonly addon: NativeEngineHandle,
    private readonly pool: KernelPool,
  ) {}

  written(storage: HeapStorage): void {
    this.#versions.set(storage, (this.#versions.get(storage) ?? 0) + 1);
  }

  forget(storage: HeapStorage): void {
    const entry = this.#entries.get(storage);
    if (!entry) return;
    this.#entries.delete(storage);
    this.#release(entry);
  }

  matmul(a: TensorView, b: TensorView, attrs: MatmulAttrs, out: OutputSpec): HeapStorage {
    const { heap, addon, pool } = this;
    const job = pool.job;
    const c = heap.allocateTensor('float32', sizeOf(out.shape));
    const { batches, m, n, k, sharedB } = matmulDims(a, b, attrs, out);
    if (c.length === 0) return c;
    if (k === 0) {
      heap.floats(c).fill(0);
      return c;
    }
    const flags =
      (attrs.transposeA ? MATMUL_FLAGS.transposeA : 0) |
      (attrs.transposeB ? MATMUL_FLAGS.transposeB : 0) |
      (sharedB ? MATMUL_FLAGS.sharedB : 0);
    const bytes = addon.matmul_configure(job, batches, m, n, k, flags) >>> 0;
    const packedBytes = addon.matmul_packed_b_bytes(job) >>> 0;
    const parallel = 2 * batches * m * n * k >= PARALLEL_FLOPS;
    const pointer = (view: TensorView) => (view.storage as HeapStorage).offset;
    const storage = b.storage as HeapStorage;
    const { block, fresh } = this.#lookup(storage, `${flags & ~MATMUL_FLAGS.transposeA}:${n}:${k}`, packedBytes);
    if (block !== 0) {
      try {
        if (fresh)
          pool.run(addon.matmul_pack_b_prepare(job, storage.offset, block), parallel || packedBytes >= 1 << 18);
        pool.run(addon.matmul_prepare_packed(job, pointer(a), block, c.offset), parallel);
      } catch (error) {
        // A block left unfilled must not be read by the next call.
        this.forget(storage);
        throw error;
      }
      return c;
    }
    const scratch = heap.allocate(bytes);
    try {
      pool.run(addon.matmul_prepare(job, pointer(a), pointer(b), c.offset, scratch), parallel);
    } finally {
      heap.free(scratch);
    }
    return c;
  }

  /** The packed block to use for B (0: pack into scratch this time); `fresh`: allocated now, to be filled. */
  #lookup(storage: HeapStorage, key: string, bytes: number): { block: number; fresh: boolean } {
    const version = this.#versions.get(storage) ?? 0;
    let entry = this.#entries.get(storage);
    if (!entry || entry.key !== key || entry.version !== version) {
      if (entry) this.#release(entry);
      entry = { key, version, uses: 0, block: 0, bytes: 0 };
      this.#entries.set(storage, entry);
    }
    entry.uses++;
    if (entry.block !== 0) return { block: entry.block, fresh: false };
    if (entry.uses < 2 || this.#bytes + bytes > PACKED_BUDGET) return { block: 0, fresh: false };
    try {
      entry.block = this.heap.allocate(bytes);
    } catch {
      // Out of heap: pack into scratch as for an operand seen once.
      return { block: 0, fresh: false };
    }
    entry.bytes = bytes;
    this.#bytes += bytes;
    return { block: entry.block, fresh: true };
  }

  #release(entry: PackedEntry): void {
    if (entry.block === 0) return;
    this.heap.free(entry.block);
    this.#bytes -= entry.bytes;
    entry.block = 0;
  }
}
