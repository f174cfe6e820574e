import { describe, expect, it } from 'vitest';
import {
  BackendUnavailableError,
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
      { name: 'broken-gpu', priority: 300, available: false, active: false, reason: 'no adapter found' },
      { name: 'mid', priority: 200, available: true, active: true, device: 'toy device' },
      { name: 'low', priority: 100, available: true, active: false, device: 'toy device' },
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

  it('lists every reason when nothing initialises', async () => {
    const reasons = new NoBackendError([
      { backend: 'a', reason: 'x' },
      { backend: 'b', reason: 'y' },
    ]);
    expect(reasons.message).toBe('no backend could be initialised:\n  - a: x\n  - b: y');
  });
});
