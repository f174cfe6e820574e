import { describe, expect, it } from 'vitest';
import {
  BackendDisposedError,
  BackendUnavailableError,
  DeviceError,
  memory,
  ops,
  tensor,
  NoBackendError,
  UnknownBackendError,
  activeBackend,
  disposeBackend,
  initializedBackend,
  listBackends,
  ready,
  registerBackend,
  registeredBackends,
  setBackend,
} from '../src/index.js';
import { createToyBackend } from './toy-backend.js';

// The registry is process-wide; vitest isolates test files, so this file starts with it empty.
describe('backend registry', () => {
  it('says that no backend is registered, and how to get one', async () => {
    await expect(ready()).rejects.toThrow(NoBackendError);
    await expect(ready()).rejects.toThrow(/@diff-transformer\/backend-cpu/);
    expect(() => activeBackend()).toThrow(NoBackendError);
  });

  it('falls back past failing backends to the highest-priority one that initialises, and lists why', async () => {
    let lowCalls = 0;
    registerBackend(
      'broken-gpu',
      async () => {
        throw new Error('no adapter found');
      },
      300,
    );
    registerBackend('mid', () => createToyBackend('mid'), 200);
    registerBackend(
      'low',
      () => {
        lowCalls++;
        return createToyBackend('low');
      },
      100,
    );
    expect(registeredBackends()).toEqual(['broken-gpu', 'mid', 'low']);
    const backend = await ready();
    expect(backend.name).toBe('mid');
    expect(activeBackend()).toBe(backend);
    const infos = await listBackends();
    expect(infos).toEqual([
      {
        name: 'broken-gpu',
        priority: 300,
        effectivePriority: 300,
        ranking: 'not ranked: it is unavailable',
        available: false,
        active: false,
        reason: 'no adapter found',
      },
      {
        name: 'mid',
        priority: 200,
        effectivePriority: 200,
        ranking: 'its registered priority, 200',
        available: true,
        active: true,
        device: 'toy device',
      },
      {
        name: 'low',
        priority: 100,
        effectivePriority: 100,
        ranking: 'its registered priority, 100',
        available: true,
        active: false,
        device: 'toy device',
      },
    ]);
    await expect(initializedBackend('broken-gpu')).rejects.toThrow(BackendUnavailableError);
    await expect(initializedBackend('broken-gpu')).rejects.toThrow(
      "backend 'broken-gpu' is unavailable: no adapter found",
    );
    // Factories run once; the result is cached.
    await initializedBackend('low');
    await initializedBackend('low');
    expect(lowCalls).toBe(1);
  });

  it('switches at runtime, and the latest setBackend call wins over a slower earlier one', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    registerBackend(
      'slow',
      async () => {
        await gate;
        return createToyBackend('slow');
      },
      50,
    );
    const slow = setBackend('slow');
    await setBackend('low');
    release();
    await slow;
    expect(activeBackend().name).toBe('low');
    await setBackend('mid');
    expect(activeBackend().name).toBe('mid');
  });

  it('names the registered backends when asked for an unknown one', async () => {
    await expect(setBackend('tpu')).rejects.toThrow(UnknownBackendError);
    await expect(setBackend('tpu')).rejects.toThrow(
      "unknown backend 'tpu'; registered backends: broken-gpu, mid, low, slow",
    );
  });

  it('disposes a backend and creates it afresh on next use', async () => {
    const first = await initializedBackend('low');
    await disposeBackend('low');
    const second = await initializedBackend('low');
    expect(second).not.toBe(first);
  });

  it('after disposeBackend, a tensor of that backend refuses every use with a typed error', async () => {
    const backend = await initializedBackend('low');
    const before = memory('low');
    const t = tensor([1, 2], [2], { backend });
    const view = ops.reshape(t, [1, 2]);
    await disposeBackend('low');
    await expect(t.data()).rejects.toThrow(BackendDisposedError);
    await expect(t.dataFloat()).rejects.toThrow(DeviceError);
    await expect(t.data()).rejects.toThrow(
      /^backend 'low': Tensor#\d+\(\[2\], float32\) was used after disposeBackend\('low'\) released its backend/,
    );
    expect(() => ops.add(t, t)).toThrow(BackendDisposedError);
    expect(() => ops.reshape(t, [2, 1])).toThrow(BackendDisposedError);
    await expect(t.to('mid')).rejects.toThrow(BackendDisposedError);
    expect((await t.data().catch((e: DeviceError) => e)) as DeviceError).toMatchObject({ code: 'DEVICE_LOST' });
    // Disposing is still harmless, and the counts come back.
    t.dispose();
    view.dispose();
    expect(memory('low')).toEqual(before);
    // A fresh instance serves new tensors.
    const again = tensor([3], [1], { backend: await initializedBackend('low') });
    expect(Array.from(await again.data())).toEqual([3]);
    again.dispose();
  });

  it('ranks a backend that lowered its own priority below the others, unless it is asked for by name', async () => {
    await disposeBackend('low');
    await disposeBackend('mid');
    await disposeBackend('slow');
    await disposeBackend('broken-gpu');
    // A GPU backend that found only a software adapter: available, but slower than the CPU.
    registerBackend(
      'emulated-gpu',
      () => ({
        ...createToyBackend('emulated-gpu'),
        effectivePriority: { value: 50, reason: 'a software adapter (the GPU is emulated on the CPU)' },
      }),
      250,
    );
    const backend = await ready();
    expect(backend.name).toBe('mid');
    const infos = await listBackends();
    expect(infos.map((b) => [b.name, b.effectivePriority])).toEqual([
      ['broken-gpu', 300],
      ['mid', 200],
      ['low', 100],
      ['emulated-gpu', 50], // a tie goes to the higher registered priority
      ['slow', 50],
    ]);
    expect(infos.find((b) => b.name === 'emulated-gpu')).toMatchObject({
      priority: 250,
      available: true,
      ranking: 'priority 250 lowered to 50: a software adapter (the GPU is emulated on the CPU)',
    });
    expect((await setBackend('emulated-gpu')).name).toBe('emulated-gpu');
    expect(activeBackend().name).toBe('emulated-gpu');
  });

  it('still picks a lowered backend when it is the only one that initialises', async () => {
    for (const name of registeredBackends()) await disposeBackend(name);
    for (const name of ['mid', 'low', 'slow'])
      registerBackend(
        name,
        () => {
          throw new Error(`${name} is switched off`);
        },
        100,
      );
    const backend = await ready();
    expect(backend.name).toBe('emulated-gpu');
  });

  it('lists every reason when nothing initialises', async () => {
    const reasons = new NoBackendError([
      { backend: 'a', reason: 'x' },
      { backend: 'b', reason: 'y' },
    ]);
    expect(reasons.message).toBe('no backend could be initialised:\n  - a: x\n  - b: y');
  });
});
