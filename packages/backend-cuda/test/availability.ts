/**
 * Whether the CUDA backend initialises here, decided once before any test is registered, and the reason
 * when it does not (printed, so a skipped GPU test always says why).
 */
import { listBackends } from '@diff-transformer/core';
import '@diff-transformer/backend-cuda';

const info = (await listBackends()).find((b) => b.name === 'cuda');

export const cudaAvailable = info?.available === true;
export const unavailableReason = info?.reason ?? 'the cuda backend did not register';

let printed = false;
/** Prints the reason once per test file; returns the text to use in skipped tests' names. */
export function skipReason(): string {
  if (!cudaAvailable && !printed) {
    printed = true;
    console.warn(`[backend-cuda] GPU tests skipped: cuda is unavailable: ${unavailableReason}`);
  }
  return `needs a CUDA GPU (unavailable: ${unavailableReason})`;
}
