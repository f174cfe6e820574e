/**
 * What the kernel module (the C kernels of ../../c compiled to WebAssembly) exports: the entry points
 * both engines have (../c-kernels/entry-points.ts), and the two globals of its memory layout.
 */
import type { CKernelEntryPoints } from '../c-kernels/entry-points.js';

export interface KernelExports extends CKernelEntryPoints {
  /** First byte past the module's stack and data: where the heap starts. */
  readonly __heap_base: WebAssembly.Global;
  /** The calling instance's stack pointer; each worker thread sets its own. */
  readonly __stack_pointer: WebAssembly.Global;
}
