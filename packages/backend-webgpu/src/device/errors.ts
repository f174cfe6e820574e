/**
 * Device errors as core's DeviceError. WebGPU reports most failures asynchronously — error scopes
 * around allocation, compilation and submission, uncaptured errors, device loss — so they are kept
 * here and thrown by the next check() (the next kernel, read or synchronize), each error once.
 * Device loss and disposal are permanent: every later check() throws DEVICE_LOST.
 */
import { DeviceError } from '@diff-transformer/core';
import { BACKEND_NAME } from './gpu.js';

export class DeviceErrors {
  readonly #device: GPUDevice;
  /** A DeviceError waiting to be thrown. */
  #pending: DeviceError | null = null;
  /** Error scopes not yet settled. */
  #scopes: Array<Promise<void>> = [];
  #lost: { reason: string; message: string } | null = null;
  #closed = false;

  constructor(device: GPUDevice) {
    this.#device = device;
    device.lost.then((info) => {
      if (!this.#closed) this.#lost = { reason: info.reason, message: info.message };
    });
    device.onuncapturederror = (event: GPUUncapturedErrorEvent) => {
      this.record(event.error);
    };
  }

  /** The device was lost (a driver reset, or destroy()). */
  get lost(): boolean {
    return this.#lost !== null;
  }

  /**
   * Runs `body` inside an error scope of `filter`; whatever the scope catches is thrown later by
   * check(), as "`what`: the GPU's message".
   */
  scoped<T>(filter: GPUErrorFilter, what: string, body: () => T): T {
    this.#device.pushErrorScope(filter);
    try {
      return body();
    } finally {
      this.#watch(this.#device.popErrorScope(), what);
    }
  }

  /** Keeps the first error seen until check() throws it. */
  record(error: GPUError, what = 'running work'): void {
    if (this.#pending || this.#closed) return;
    const oom = error.constructor?.name === 'GPUOutOfMemoryError' || /out of memory|OutOfMemory/i.test(error.message);
    this.#pending = new DeviceError(
      BACKEND_NAME,
      oom ? 'out-of-memory' : 'internal',
      `${what}: ${error.message}`,
      error,
    );
  }

  /**
   * Throws the DeviceError that says why the device cannot take work: disposed, lost, or an error an
   * earlier operation left behind (thrown once).
   */
  check(): void {
    if (this.#closed) {
      throw new DeviceError(
        BACKEND_NAME,
        'device-lost',
        'the backend was disposed; create it again (setBackend, or createWebGPUBackend)',
      );
    }
    if (this.#lost) {
      throw new DeviceError(
        BACKEND_NAME,
        'device-lost',
        `the GPU device was lost (${this.#lost.reason}: ${this.#lost.message || 'no message'}); ` +
          `dispose the backend and create it again`,
      );
    }
    const error = this.#pending;
    if (error) {
      this.#pending = null;
      throw error;
    }
  }

  /** Waits for every open error scope to settle, then check(). */
  async collect(): Promise<void> {
    const scopes = this.#scopes;
    this.#scopes = [];
    await Promise.all(scopes);
    this.check();
  }

  /** The backend is being disposed: later errors are ignored, later checks say "disposed". */
  close(): void {
    this.#closed = true;
    this.#device.onuncapturederror = null;
  }

  #watch(scope: Promise<GPUError | null>, what: string): void {
    // Long runs without a readback would otherwise pile up settled promises.
    if (this.#scopes.length >= 256) this.#scopes = [Promise.all(this.#scopes).then(() => undefined)];
    this.#scopes.push(
      scope.then(
        (error) => {
          if (error) this.record(error, what);
        },
        () => undefined,
      ),
    );
  }
}
