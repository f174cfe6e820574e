/**
 * The backend object itself: its description, storage semantics (copies in and out, live counting),
 * the dtypes it refuses, and its registration with core.
 */
import {
  DTypeError,
  KERNEL_NAMES,
  initializedBackend,
  listBackends,
  memory,
  ops,
  registeredBackends,
  tensor,
  tidy,
  zeros,
} from '@diff-transformer/core';
import { createCpuBackend } from '@diff-transformer/backend-cpu';
import { describe, expect, it } from 'vitest';

describe('the backend object', () => {
  it('describes itself and implements every kernel of the contract', () => {
    const backend = createCpuBackend();
    expect(backend.name).toBe('cpu');
    expect(backend.device).toBe('CPU (TypeScript, float32)');
    expect([...backend.dtypes]).toEqual(['float32', 'int32']);
    for (const kernel of KERNEL_NAMES) expect(typeof backend.kernels[kernel], kernel).toBe('function');
  });

  it('upload copies: changing the host array afterwards does not change the tensor', async () => {
    const backend = createCpuBackend();
    const host = new Float32Array([1, 2, 3]);
    const t = tensor(host, [3], { backend });
    host[0] = 99;
    expect(Array.from(await t.data())).toEqual([1, 2, 3]);
  });

  it('read returns a copy: writing into it does not change the tensor', async () => {
    const backend = createCpuBackend();
    const t = tensor([1, 2, 3], [3], { backend });
    const first = await t.data();
    first[1] = -7;
    const second = await t.data();
    expect(second).not.toBe(first);
    expect(Array.from(second)).toEqual([1, 2, 3]);
  });

  it('keeps int32 as Int32Array and zero-fills', async () => {
    const backend = createCpuBackend();
    const ids = tensor(new Int32Array([5, -3, 2147483647]), [3], { backend });
    const data = await ids.data();
    expect(data).toBeInstanceOf(Int32Array);
    expect(Array.from(data)).toEqual([5, -3, 2147483647]);
    const z = zeros([2, 3], { backend, dtype: 'int32' });
    expect(Array.from(await z.data())).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('refuses float16 and bfloat16 storage, through core and directly', () => {
    const backend = createCpuBackend();
    expect(() => tensor([1, 2], [2], { backend, dtype: 'float16' })).toThrow(DTypeError);
    expect(() => zeros([2], { backend, dtype: 'bfloat16' })).toThrow(DTypeError);
    // Tensor.to() uploads with the source's dtype without asking core first.
    expect(() => backend.upload(new Float32Array(2), 'float16')).toThrow(/float32 \| int32/);
    expect(() => backend.zeros(2, 'bfloat16')).toThrow(DTypeError);
  });

  it('counts live storages: uploads, zeros and kernel outputs, until freed', () => {
    const backend = createCpuBackend();
    expect(backend.liveStorages).toBe(0);
    const a = tensor([1, 2], [2], { backend });
    const b = zeros([2], { backend });
    expect(backend.liveStorages).toBe(2);
    // Views share their storage (nothing new); the kernel output is new and survives the scope.
    const sum = tidy(() => ops.add(a.reshape([1, 2]), b.reshape([1, 2])));
    expect(backend.liveStorages).toBe(3);
    sum.dispose();
    a.dispose();
    b.dispose();
    expect(backend.liveStorages).toBe(0);
    // A second free of the same handle is harmless.
    const c = tensor([1], [1], { backend });
    backend.free(c.storage);
    backend.free(c.storage);
    expect(backend.liveStorages).toBe(0);
  });

  it('synchronize resolves at once: every kernel has finished when it returns', async () => {
    await expect(createCpuBackend().synchronize!()).resolves.toBeUndefined();
  });
});

describe('registration', () => {
  it('importing the package registers cpu at priority 100', async () => {
    expect(registeredBackends()).toContain('cpu');
    const info = (await listBackends()).find((b) => b.name === 'cpu');
    expect(info).toMatchObject({ name: 'cpu', priority: 100, available: true, device: 'CPU (TypeScript, float32)' });
    const backend = await initializedBackend('cpu');
    expect(backend.name).toBe('cpu');
  });

  it('core counts cpu storages by name', () => {
    const backend = createCpuBackend();
    const before = memory('cpu');
    const t = tensor(new Float32Array(10), [10], { backend });
    expect(memory('cpu')).toEqual({ liveStorages: before.liveStorages + 1, bytes: before.bytes + 40 });
    t.dispose();
    expect(memory('cpu')).toEqual(before);
  });
});
