import type { Backend, StorageHandle } from '../backend/kernels.js';
import { isBackendDisposed } from '../backend/registry.js';
import type { DType } from './dtype.js';
import { bytesPerElement } from './dtype.js';

/**
 * A reference-counted wrapper around a backend storage handle. Several tensors share one storage when
 * one is a reshaped view of another; the storage is freed when the last of them is disposed.
 */
export class StorageRef {
  refs = 1;
  /** Counts in-place writes (cacheWrite, adamw), so a value derived from the storage knows it is stale. */
  version = 0;
  constructor(
    readonly backend: Backend,
    readonly handle: StorageHandle,
    readonly dtype: DType,
    readonly size: number,
  ) {
    const stats = statsFor(backend.name);
    stats.liveStorages++;
    stats.bytes += this.bytes;
  }

  get bytes(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  retain(): void {
    this.refs++;
  }

  release(): void {
    if (this.refs <= 0) return;
    this.refs--;
    if (this.refs === 0) {
      const stats = statsFor(this.backend.name);
      stats.liveStorages--;
      stats.bytes -= this.bytes;
      // A backend disposeBackend() released has freed everything already.
      if (!isBackendDisposed(this.backend)) this.backend.free(this.handle);
    }
  }
}

export interface MemoryStats {
  /** Storages allocated through core and not yet freed. */
  liveStorages: number;
  /** Their size in bytes. */
  bytes: number;
}

// Shared through globalThis so that two copies of core (an ESM and a CJS build loaded side by side)
// count the same storages.
const STATS_KEY = Symbol.for('@diff-transformer/core/memory-stats');
type StatsTable = Map<string, MemoryStats>;
const globalStore = globalThis as unknown as Record<symbol, StatsTable | undefined>;
// biome-ignore lint/suspicious/noAssignInExpressions: created by whichever copy of core loads first, then shared
const table: StatsTable = (globalStore[STATS_KEY] ??= new Map());

function statsFor(backend: string): MemoryStats {
  let s = table.get(backend);
  if (!s) {
    s = { liveStorages: 0, bytes: 0 };
    table.set(backend, s);
  }
  return s;
}

/**
 * The live-storage counter: per backend, or summed over all backends. Tests take it before and after a
 * piece of work to assert that nothing leaked.
 */
export function memory(backend?: string): MemoryStats {
  if (backend !== undefined) return { ...statsFor(backend) };
  let liveStorages = 0;
  let bytes = 0;
  for (const s of table.values()) {
    liveStorages += s.liveStorages;
    bytes += s.bytes;
  }
  return { liveStorages, bytes };
}
