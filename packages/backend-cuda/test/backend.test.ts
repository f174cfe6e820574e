import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffTransformer, initializedBackend, listBackends, setBackend, tensor, tidy } from '@diff-transformer/core';
import { ADDON_FILE, CUDA_PRIORITY, type CudaBackend } from '@diff-transformer/backend-cuda';
import { describe, expect, it } from 'vitest';
import { runGpuChecks } from '../scripts/gpu-checks.js';
import { cudaAvailable, skipReason, unavailableReason } from './availability.js';

const packageRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const built = existsSync(join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, ADDON_FILE));

describe('registration', () => {
  it('registers cuda (priority 300) without throwing, available or not, with a reason when not', async () => {
    const cuda = (await listBackends()).find((b) => b.name === 'cuda');
    expect(cuda).toBeDefined();
    expect(cuda!.priority).toBe(CUDA_PRIORITY);
    if (!cuda!.available) {
      expect(cuda!.reason).toBeTruthy();
      console.warn(`[backend-cuda] cuda is unavailable here: ${cuda!.reason}`);
    }
  });

  it.runIf(built && !cudaAvailable)('where the addon was built but there is no GPU, the reason is CUDA’s own', () => {
    // This machine: the addon loads, cudaGetDeviceCount fails (no driver, error 35) or finds no device.
    expect(unavailableReason).toMatch(/CUDA driver|CUDA device|cudaError/);
    expect(unavailableReason).not.toMatch(/not found \(looked for/);
  });

  it.runIf(!cudaAvailable)('setBackend("cuda") rejects with BACKEND_UNAVAILABLE and the reason', async () => {
    await expect(setBackend('cuda')).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE', reason: unavailableReason });
  });
});

describe.skipIf(!cudaAvailable)('on the GPU', () => {
  it('round-trips every dtype and keeps tensors on the device', async () => {
    const backend = (await initializedBackend('cuda')) as CudaBackend;
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
      const t = tensor([1, -2.5, 3, 0.125], [2, 2], { backend, dtype });
      expect(Array.from(await t.data())).toEqual([1, -2.5, 3, 0.125]);
      t.dispose();
    }
    const ids = tensor(Int32Array.from([7, -1, 2 ** 30]), [3], { backend });
    expect(Array.from(await ids.data())).toEqual([7, -1, 2 ** 30]);
    ids.dispose();
  });

  it('runs a small model forward and frees every storage', async () => {
    const backend = (await initializedBackend('cuda')) as CudaBackend;
    const before = backend.liveStorages;
    const model = DiffTransformer.create(
      { vocabSize: 64, hiddenSize: 64, numLayers: 2, numHeads: 2 },
      { seed: 0, backend },
    );
    const logits = tidy(() => model.forward([[1, 2, 3, 4, 5]]));
    const values = await logits.data();
    expect(values.every(Number.isFinite)).toBe(true);
    logits.dispose();
    model.dispose();
    expect(backend.liveStorages).toBe(before);
  });

  it('passes the GPU checks ' +
    '(tensor-core attention, split decoding, matmul layouts, out of memory, leaks)', async () => {
    const backend = (await initializedBackend('cuda')) as CudaBackend;
    const results = await runGpuChecks(backend, (line) => console.log(line));
    expect(results.filter((r) => !r.pass).map((r) => `${r.name}: ${r.detail}`)).toEqual([]);
  }, 600_000);
});

describe.skipIf(cudaAvailable)('without a GPU', () => {
  it.skip(`GPU tests: ${skipReason()}`, () => {});
});
