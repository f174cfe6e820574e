/**
 * Picks and loads the kernel binary this engine can run: relaxed SIMD where WebAssembly.validate
 * accepts it (its multiply-add is one FMA instruction), plain SIMD128 otherwise, none when the
 * engine has no SIMD (the backend then runs its TypeScript kernels).
 *
 * Both binaries import their memory as shared, for threads. Where SharedArrayBuffer is missing (a
 * page that is not cross-origin isolated) the import is rewritten to an unshared memory and the
 * backend runs on one thread: the module never blocks on its memory, so it is valid either way.
 */
import { RELAXED_SIMD_WASM, SIMD128_WASM } from './binaries.generated.js';
import type { KernelExports } from './exports.js';
import { PAGE_BYTES } from '../heap/heap.js';

export type SimdFlavour = 'relaxed-simd' | 'simd128';

const BASE64: Record<SimdFlavour, string> = { 'relaxed-simd': RELAXED_SIMD_WASM, simd128: SIMD128_WASM };

/** 64 KiB pages: the initial heap (it grows on demand) and the maxima tried, largest first. */
const INITIAL_PAGES = 64;
const MAXIMUM_PAGES = [65536, 16384, 4096];

export interface LoadedKernels {
  readonly flavour: SimdFlavour;
  /** Compiled once; worker threads instantiate the same module over the same memory. */
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  readonly maximumBytes: number;
  readonly exports: KernelExports;
}

const decoded = new Map<SimdFlavour, Uint8Array<ArrayBuffer>>();

/** The binary of a flavour (decoded once per process). */
export function binary(flavour: SimdFlavour): Uint8Array<ArrayBuffer> {
  let bytes = decoded.get(flavour);
  if (!bytes) {
    const text = atob(BASE64[flavour]);
    bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    decoded.set(flavour, bytes);
  }
  return bytes;
}

/** The flavours this engine validates, best first. */
export function supportedFlavours(): SimdFlavour[] {
  if (typeof WebAssembly !== 'object') return [];
  return (['relaxed-simd', 'simd128'] as const).filter((flavour) =>
    WebAssembly.validate(withPrivateMemory(binary(flavour))),
  );
}

/** Compiles and instantiates `flavour` over a new memory, shared when `shared` (and possible). */
export async function loadKernels(flavour: SimdFlavour, shared: boolean): Promise<LoadedKernels> {
  const { memory, maximumBytes } = createMemory(shared);
  const isShared = typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer;
  const bytes = isShared ? binary(flavour) : withPrivateMemory(binary(flavour));
  const module = await WebAssembly.compile(bytes);
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  return {
    flavour,
    module,
    memory,
    shared: isShared,
    maximumBytes,
    exports: instance.exports as unknown as KernelExports,
  };
}

/**
 * A memory with the largest maximum the system grants (a shared memory reserves its maximum up
 * front, which a 32-bit or memory-constrained browser may refuse).
 */
function createMemory(shared: boolean): { memory: WebAssembly.Memory; maximumBytes: number } {
  let failure: unknown;
  for (const maximum of MAXIMUM_PAGES) {
    try {
      const memory = new WebAssembly.Memory({
        initial: INITIAL_PAGES,
        maximum,
        shared,
      } as WebAssembly.MemoryDescriptor);
      return { memory, maximumBytes: maximum * PAGE_BYTES };
    } catch (cause) {
      failure = cause;
    }
  }
  throw new Error(`backend 'cpu': cannot create a WebAssembly memory (${String(failure)})`, { cause: failure });
}

/**
 * The binary with the shared flag of its memory import cleared. Walks the import section
 * (WebAssembly core spec §5.5.5): the memory's limits flag byte is 0x03 (shared, with a maximum)
 * and becomes 0x01; nothing changes length.
 */
export function withPrivateMemory(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const out = bytes.slice();
  let at = 8; // magic and version
  while (at < out.length) {
    const section = out[at++];
    let size: number;
    [size, at] = readUnsigned(out, at);
    if (section === 2) {
      let p = at;
      let count: number;
      [count, p] = readUnsigned(out, p);
      for (let i = 0; i < count; i++) {
        for (let name = 0; name < 2; name++) {
          let length: number;
          [length, p] = readUnsigned(out, p);
          p += length;
        }
        const kind = out[p++];
        if (kind === 2) {
          out[p] &= ~0x02;
          return out;
        }
        if (kind === 0)
          [, p] = readUnsigned(out, p); // function: type index
        else if (kind === 1)
          p = skipLimits(out, p + 1); // table: reference type, limits
        else p += 2; // global: value type, mutability
      }
    }
    at += size;
  }
  throw new Error("backend 'cpu': the kernel binary imports no memory");
}

function skipLimits(bytes: Uint8Array, at: number): number {
  const hasMaximum = bytes[at] & 0x01;
  let p = at + 1;
  [, p] = readUnsigned(bytes, p);
  if (hasMaximum) [, p] = readUnsigned(bytes, p);
  return p;
}

/** An unsigned LEB128 number at `at`; returns it and the offset after it. */
function readUnsigned(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  let byte: number;
  do {
    byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}
