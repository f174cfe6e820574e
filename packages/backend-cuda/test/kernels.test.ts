/**
 * The kernel table's wiring, without a GPU: the backend is built on a stand-in for the addon that records every
 * call, so what the TypeScript side hands the native code (pointers, the attention parameter layout that
 * native/addon.cc parses, host-side factors) and how it cleans up after a failed launch are checked here. What
 * the kernels compute is checked by the conformance suite on a GPU and, for attention, by emulation/.
 */
import {
  DeviceError,
  type DType,
  KERNEL_NAMES,
  TRAINING_KERNEL_NAMES,
  type TensorView,
  UnsupportedKernelError,
} from '@diff-transformer/core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CudaAddon } from '../src/addon.js';
import { createCudaBackend } from '../src/backend.js';
import { ADDON_FILE, loadAddon } from '../src/loader.js';
import { FLASH_ATTENTION_HEAD_WIDTHS, FLASH_HEAD_WIDTHS, attentionParams } from '../src/kernels/attention.js';
import { adamwParams } from '../src/kernels/training.js';
import type { CudaStorage } from '../src/storage.js';

interface Call {
  name: string;
  args: unknown[];
}

/** An addon whose init succeeds and whose every other function records its call (alloc hands out addresses). */
function standIn(overrides: Partial<Record<keyof CudaAddon, (...args: never[]) => unknown>> = {}) {
  const calls: Call[] = [];
  let next = 0x1000;
  const base: Record<string, (...args: never[]) => unknown> = {
    init: () => ({
      ok: true,
      name: 'stand-in',
      major: 9,
      minor: 0,
      multiprocessors: 132,
      totalMemory: 2 ** 30,
      deviceCount: 1,
      driverVersion: 13000,
      runtimeVersion: 13000,
      forceSimt: false,
    }),
    alloc: (bytes: number) => {
      const pointer = next;
      next += Math.max(256, bytes);
      return pointer;
    },
    attentionBackwardTile: () => 32,
    ...overrides,
  };
  const addon = new Proxy(base, {
    get(target, name: string) {
      return (...args: unknown[]) => {
        calls.push({ name, args });
        return target[name]?.(...(args as never[]));
      };
    },
  }) as unknown as CudaAddon;
  const backend = createCudaBackend({ ok: true, addon, path: 'stand-in.node' });
  return { backend, calls };
}

function view(pointer: number, shape: number[], dtype: DType = 'bfloat16'): TensorView {
  return { storage: { pointer, size: shape.reduce((a, b) => a * b, 1), dtype }, shape, dtype };
}

const spec = (shape: readonly number[], dtype: DType = 'bfloat16') => ({ shape, dtype });
const pointerOf = (s: unknown) => (s as CudaStorage).pointer;

// DIFF V1 with GQA: B 2, T 5, H 4 (8 half-heads), Hkv 2 (4 per-map key half-heads), dk 16, dv 32, S 9.
const q = view(0x10, [2, 5, 8, 16]);
const k = view(0x20, [2, 9, 4, 16]);
const v = view(0x30, [2, 9, 2, 32]);
const lambda = view(0x40, [4], 'float32');
const weight = view(0x50, [32], 'float16');
const attrs = { causal: true, keyOffset: 4, keyLength: 9, scale: 0.25, norm: { eps: 1e-5, outputScale: 0.8 } };

describe('the kernel table (a recording stand-in for the addon)', () => {
  it('implements every kernel of the contract, training included', () => {
    const { backend } = standIn();
    for (const kernel of KERNEL_NAMES) expect(typeof backend.kernels[kernel], kernel).toBe('function');
    expect(TRAINING_KERNEL_NAMES.every((kernel) => backend.supports?.(kernel, 'bfloat16') === true)).toBe(true);
  });

  it('diffAttentionWithStatistics asks the forward kernel for each map’s log-sum-exp and output', () => {
    const { backend, calls } = standIn();
    const r = backend.kernels.diffAttentionWithStatistics!(q, k, v, lambda, weight, attrs, spec([2, 5, 4, 32]), {
      logSumExp: spec([2, 5, 4, 2], 'float32'),
      mapOutputs: spec([2, 5, 4, 2, 32], 'float32'),
    });
    const params = calls.find((c) => c.name === 'attention')!.args[0] as Float64Array;
    expect(params).toHaveLength(28);
    expect(params[5]).toBe(pointerOf(r.output));
    expect(params[26]).toBe(pointerOf(r.statistics.logSumExp));
    expect(params[27]).toBe(pointerOf(r.statistics.mapOutputs));
    expect(new Set([r.output, r.statistics.logSumExp, r.statistics.mapOutputs].map(pointerOf)).size).toBe(3);
  });

  it('diffAttentionBackward hands over the forward’s layout, the saved statistics and every gradient', () => {
    const { backend, calls } = standIn();
    const statistics = { logSumExp: view(0x60, [2, 5, 4, 2], 'float32'), mapOutputs: view(0x70, [2, 5, 4, 2, 32]) };
    const dOut = view(0x80, [2, 5, 4, 32]);
    const g = backend.kernels.diffAttentionBackward!(q, k, v, lambda, weight, statistics, dOut, attrs, {
      dq: spec(q.shape),
      dk: spec(k.shape),
      dv: spec(v.shape),
      dLambda: spec([4], 'float32'),
      dNormWeight: spec([32], 'float16'),
    });
    const params = calls.find((c) => c.name === 'attentionBackward')!.args[0] as Float64Array;
    // native/addon.cc: q k v λ w out | dtypes | B T S H Hkv KH dk dv | flags | offset length | scale eps c | stats
    expect(params).toHaveLength(35);
    expect(Array.from(params.slice(0, 5))).toEqual([0x10, 0x20, 0x30, 0x40, 0x50]);
    expect(Array.from(params.slice(6, 9))).toEqual([2, 0, 1]); // bfloat16 q, float32 λ, float16 weight
    expect(Array.from(params.slice(9, 17))).toEqual([2, 5, 9, 4, 2, 4, 16, 32]);
    expect(Array.from(params.slice(17, 23))).toEqual([1, 1, 0, 1, 4, 9]);
    expect(params[23]).toBe(0.25);
    expect([params[26], params[27], params[28], params[29]]).toEqual([0x60, 0x70, 0, 0x80]);
    expect(Array.from(params.slice(30))).toEqual([g.dq, g.dk, g.dv, g.dLambda, g.dNormWeight].map(pointerOf));
  });

  it('attentionBackward passes the forward’s output; no λ, no norm weight', () => {
    const { backend, calls } = standIn();
    const [sq, sk, sv] = [view(1, [1, 3, 2, 8]), view(2, [1, 3, 1, 8]), view(3, [1, 3, 1, 8])];
    const mask = { causal: true, keyOffset: 0, keyLength: 3, scale: 0.5 };
    const g = backend.kernels.attentionBackward!(
      sq,
      sk,
      sv,
      view(4, [1, 3, 2, 8]),
      { logSumExp: view(5, [1, 3, 2, 1], 'float32'), mapOutputs: null },
      view(6, [1, 3, 2, 8]),
      mask,
      { dq: spec(sq.shape), dk: spec(sk.shape), dv: spec(sv.shape) },
    );
    const params = calls.find((c) => c.name === 'attentionBackward')!.args[0] as Float64Array;
    expect(params[17]).toBe(0); // not differential
    expect([params[26], params[27], params[28], params[29]]).toEqual([5, 0, 4, 6]);
    expect(Array.from(params.slice(30))).toEqual([...[g.dq, g.dk, g.dv].map(pointerOf), 0, 0]);
  });

  it('a launch that fails frees every output it allocated and throws a DeviceError', () => {
    const failure = Object.assign(new Error('attentionBackward: invalid argument (cudaErrorInvalidValue)'), {
      cudaError: 1,
      cudaErrorName: 'cudaErrorInvalidValue',
    });
    const { backend, calls } = standIn({
      attentionBackward: () => {
        throw failure;
      },
    });
    const before = backend.liveStorages;
    const statistics = { logSumExp: view(0x60, [2, 5, 4, 2], 'float32'), mapOutputs: view(0x70, [2, 5, 4, 2, 32]) };
    expect(() =>
      backend.kernels.diffAttentionBackward!(q, k, v, lambda, weight, statistics, view(0x80, [2, 5, 4, 32]), attrs, {
        dq: spec(q.shape),
        dk: spec(k.shape),
        dv: spec(v.shape),
        dLambda: spec([4], 'float32'),
        dNormWeight: spec([32], 'float16'),
      }),
    ).toThrow(DeviceError);
    expect(backend.liveStorages).toBe(before);
    expect(calls.filter((c) => c.name === 'free')).toHaveLength(5);
  });

  it('head widths the backward cannot tile are reported unsupported, before anything is allocated', () => {
    const { backend, calls } = standIn({ attentionBackwardTile: () => 0 });
    const statistics = { logSumExp: view(0x60, [2, 5, 4, 2], 'float32'), mapOutputs: view(0x70, [2, 5, 4, 2, 32]) };
    const run = () =>
      backend.kernels.diffAttentionBackward!(q, k, v, lambda, null, statistics, view(0x80, [2, 5, 4, 32]), attrs, {
        dq: spec(q.shape),
        dk: spec(k.shape),
        dv: spec(v.shape),
        dLambda: spec([4], 'float32'),
        dNormWeight: null,
      });
    expect(run).toThrow(UnsupportedKernelError);
    expect(run).toThrow(/head widths dk 16 and dv 32/);
    expect(calls.filter((c) => c.name === 'alloc')).toHaveLength(0);
  });

  it('adamw gets its bias corrections from the host, in float64', () => {
    const attrs = {
      learningRate: 1e-3,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.1,
      step: 1000,
      gradScale: 1,
    };
    const [beta1, beta2, eps, gradScale, decay, stepSize, inverseCorrection2] = adamwParams(attrs);
    expect([beta1, beta2, eps, gradScale]).toEqual([0.9, 0.95, 1e-8, 1]);
    expect(decay).toBe(1 - 1e-4);
    expect(stepSize).toBe(1e-3 / (1 - 0.9 ** 1000));
    expect(inverseCorrection2).toBe(1 / Math.sqrt(1 - 0.95 ** 1000));
  });

  it('dispose frees every storage still live, then disposes the addon', () => {
    const { backend, calls } = standIn();
    const held = [backend.zeros(10, 'float32'), backend.upload(new Float32Array(4), 'bfloat16')];
    const freedEarly = backend.zeros(3, 'float16');
    backend.free(freedEarly);
    backend.dispose?.();
    const frees = calls.filter((c) => c.name === 'free').map((c) => c.args[0]);
    expect(frees).toEqual([pointerOf(freedEarly), ...held.map(pointerOf)]);
    expect(calls.at(-1)?.name).toBe('dispose');
    expect(backend.liveStorages).toBe(0);
  });

  it('crossEntropy passes an ignoreIndex outside int32 as one no target can equal', () => {
    const { backend, calls } = standIn();
    backend.kernels.crossEntropy!(
      view(1, [3, 7]),
      view(2, [3], 'int32'),
      { ignoreIndex: 2 ** 40, scale: 1 / 3 },
      { loss: spec([1], 'float32'), dLogits: spec([3, 7]) },
    );
    const args = calls.find((c) => c.name === 'crossEntropy')!.args;
    expect(args.slice(4, 8)).toEqual([3, 7, -(2 ** 31), 1 / 3]);
  });
});

const packageRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const built = existsSync(join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, ADDON_FILE));
// What the emulation takes the host side of the flash kernel to decide (emulation/plans.py); null without NumPy.
const emulated = (() => {
  const run = spawnSync('python3', ['-B', join(packageRoot, 'emulation', 'plans.py')], { encoding: 'utf8' });
  return run.status === 0 ? (JSON.parse(run.stdout) as EmulatedPlans) : null;
})();

interface EmulatedPlans {
  shapes: Array<{
    dtype: number;
    maps: number;
    dk: number;
    dv: number;
    keyMaps: number;
    stages: number;
    sharedBytes: number;
    keysPerTile: number;
    threads: number;
  }>;
  plans: Array<{
    device: { multiprocessors: number; sharedMemoryPerBlock: number };
    dtype: number;
    diff: boolean;
    batch: number;
    tokens: number;
    keys: number;
    heads: number;
    kvHeads: number;
    keyHeads: number;
    dk: number;
    dv: number;
    causal: boolean;
    keyOffset: number;
    keyLength: number;
    plan: { path: string; splits: number; stages: number };
  }>;
}

const DTYPES: DType[] = ['float32', 'float16', 'bfloat16'];

describe('the built addon, without a GPU', () => {
  it.runIf(built)('tiles the attention backward as the emulation does, and refuses what cannot fit', () => {
    const load = loadAddon();
    if (!load.ok) throw new Error(load.reason);
    // (dk, dv) → rows per tile: the largest of 32, 16, 8, 4 whose shared memory fits in 96 KiB
    // (emulation/backward_emu.py, backward_tile). Every head width of the conformance suite has one.
    const expected: Array<[number, number, number]> = [
      [16, 32, 32],
      [64, 128, 32],
      [128, 128, 16],
      [128, 256, 16],
      [256, 512, 8],
      [512, 1024, 4],
      [1024, 1024, 0],
    ];
    for (const [dk, dv, tile] of expected) expect(load.addon.attentionBackwardTile(dk, dv), `${dk}/${dv}`).toBe(tile);
  });

  it.runIf(built && emulated)('sizes every flash instantiation as the emulation’s Config does', () => {
    const load = loadAddon();
    if (!load.ok) throw new Error(load.reason);
    for (const { dtype, maps, dk, dv, keyMaps, stages, ...want } of emulated!.shapes) {
      const got = load.addon.flashShape(dtype, maps, dk, dv, keyMaps, stages);
      expect(got, `${DTYPES[dtype]} maps ${maps} ${dk}/${dv} key maps ${keyMaps}, ${stages} stages`).toEqual(want);
    }
    expect(load.addon.flashShape(2, 2, 48, 96, 2, 2).sharedBytes).toBe(0); // no instantiation
    // The exported lists name exactly the instantiated widths.
    const instantiated = (maps: number) =>
      emulated!.shapes.filter((s) => s.maps === maps && s.dtype === 0 && s.stages === 2 && s.keyMaps === 1);
    expect(FLASH_HEAD_WIDTHS.map(([dk, dv]) => `${dk}/${dv}`).sort()).toEqual(
      instantiated(2)
        .map((s) => `${s.dk}/${s.dv}`)
        .sort(),
    );
    expect(FLASH_ATTENTION_HEAD_WIDTHS.map(([dk, dv]) => `${dk}/${dv}`).sort()).toEqual(
      instantiated(1)
        .map((s) => `${s.dk}/${s.dv}`)
        .sort(),
    );
  });

  it.runIf(built && emulated)('plans attention (path, key splits, stages) as the emulation does, per device', () => {
    const load = loadAddon();
    if (!load.ok) throw new Error(load.reason);
    for (const c of emulated!.plans) {
      const dtype = DTYPES[c.dtype];
      const q = view(0, [c.batch, c.tokens, (c.diff ? 2 : 1) * c.heads, c.dk], dtype);
      const kv = view(0, [c.batch, c.keys, c.keyHeads, c.dk], dtype);
      const values = view(0, [c.batch, c.keys, c.kvHeads, c.dv], dtype);
      const lambda = c.diff ? view(0, [c.heads], 'float32') : null;
      const mask = { causal: c.causal, keyOffset: c.keyOffset, keyLength: c.keyLength, scale: 1, norm: null };
      const params = attentionParams(q, kv, values, lambda, null, mask, 0, c.diff);
      const kernel = c.diff ? 'diff' : 'attention';
      const label = `${dtype} ${kernel} T${c.tokens} S${c.keys} ${c.dk}/${c.dv} on ${c.device.multiprocessors} SMs`;
      expect(load.addon.attentionPlan(params, c.device), label).toEqual(c.plan);
    }
  });
});
