/**
 * A pool of GPU buffers by size class. Creating a GPUBuffer is a driver call (and zeroing its memory);
 * a forward pass makes and drops dozens of same-sized intermediates, so released buffers are kept and
 * handed out again. Size classes are powers of two split into four steps (256, 320, 384, 448, 512, …),
 * so a buffer is at most 25% larger than asked. Idle buffers beyond `maxIdleBytes` are destroyed.
 */

/** GPUBufferUsage values (the global may not exist in Node). */
export const Usage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;

export interface PoolStats {
  /** Buffers created by this pool (ever). */
  created: number;
  /** Acquisitions served by an idle buffer instead of a new one. */
  reused: number;
  /** Buffers destroyed (over the idle cap, by trim(), or on dispose). */
  destroyed: number;
  /** Buffers that exist now: handed out + idle. */
  buffers: number;
  /** Buffers handed out and not yet released. */
  inUse: number;
  /** Bytes of every buffer that exists now. */
  bytes: number;
  /** Bytes of the idle buffers. */
  idleBytes: number;
}

/** The class a request of `bytes` is served from: ≥ bytes, ≥ 256, at most 25% above. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  readonly #idle = new Map<number, GPUBuffer[]>();
  readonly #mine = new Set<GPUBuffer>();
  readonly stats: PoolStats = { created: 0, reused: 0, destroyed: 0, buffers: 0, inUse: 0, bytes: 0, idleBytes: 0 };

  constructor(
    private readonly device: GPUDevice,
    readonly usage: number,
    readonly label: string,
    public maxIdleBytes: number,
  ) {}

  /** A buffer of at least `bytes`, idle or new. `create` may throw (e.g. out of memory). */
  acquire(
    bytes: number,
    create: (size: number) => GPUBuffer = (size) =>
      this.device.createBuffer({ size, usage: this.usage, label: this.label }),
  ): GPUBuffer {
    const size = sizeClass(bytes);
    const idle = this.#idle.get(size);
    const reused = idle?.pop();
    if (reused) {
      this.stats.reused++;
      this.stats.idleBytes -= size;
      this.stats.inUse++;
      return reused;
    }
    const buffer = create(size);
    this.#mine.add(buffer);
    this.stats.created++;
    this.stats.buffers++;
    this.stats.inUse++;
    this.stats.bytes += size;
    return buffer;
  }

  /** Takes a buffer back. The caller guarantees no pending or running GPU work still uses it. */
  release(buffer: GPUBuffer): void {
    if (!this.#mine.has(buffer)) return;
    this.stats.inUse--;
    const size = buffer.size;
    if (this.stats.idleBytes + size > this.maxIdleBytes) {
      this.#destroy(buffer);
      return;
    }
    let list = this.#idle.get(size);
    if (!list) {
      list = [];
      this.#idle.set(size, list);
    }
    list.push(buffer);
    this.stats.idleBytes += size;
  }

  /** Destroys every idle buffer (e.g. before retrying an allocation that ran out of memory). */
  trim(): number {
    let freed = 0;
    for (const list of this.#idle.values()) {
      for (const buffer of list) {
        freed += buffer.size;
        this.stats.idleBytes -= buffer.size;
        this.#destroy(buffer);
      }
    }
    this.#idle.clear();
    return freed;
  }

  /** Destroys every buffer this pool made, idle or not (the device is going away). */
  destroyAll(): void {
    for (const buffer of [...this.#mine]) this.#destroy(buffer);
    this.#idle.clear();
    this.stats.inUse = 0;
    this.stats.idleBytes = 0;
  }

  #destroy(buffer: GPUBuffer): void {
    if (!this.#mine.delete(buffer)) return;
    this.stats.destroyed++;
    this.stats.buffers--;
    this.stats.bytes -= buffer.size;
    buffer.destroy();
  }
}
