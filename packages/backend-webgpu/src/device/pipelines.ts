/**
 * The pipeline cache: one compute pipeline per program key (a shader and its shape class), compiled
 * on first use, with explicit bind-group layouts shared by programs of the same binding signature.
 * Compiling is the slow part on SwiftShader (0.5–2 s a pipeline), so the cache is what keeps a second
 * forward pass fast.
 *
 * Debugging, in Node: DIFFTX_DEBUG_PIPELINES=1 prints each pipeline compiled and how long it took;
 * DIFFTX_DEBUG_WGSL=1 prints the WGSL each pipeline is built from (a regular expression instead of 1
 * prints only the programs whose key it matches). `sources()` returns the same WGSL in any runtime.
 */
import { ArgumentError, DeviceError } from '@diff-transformer/core';
import { BACKEND_NAME } from './gpu.js';
import type { DeviceErrors } from './errors.js';

/** A compute program: its cache key, the storage layout of its bindings, and its WGSL source. */
export interface Program {
  /** Unique per shader and shape class; the pipeline cache key. */
  readonly key: string;
  /**
   * Binding 0 is always the uniform parameters; then one letter per storage binding, in order:
   * 'r' read-only storage, 'w' read-write storage.
   */
  readonly layout: string;
  readonly code: () => string;
  /** Workgroup memory the program declares, in bytes (checked against the device limit). */
  readonly workgroupBytes?: number;
}

export interface PipelineStats {
  /** Pipelines compiled. */
  pipelinesCreated: number;
  /** Milliseconds spent creating pipelines (on SwiftShader, most of a small workload's time). */
  pipelineMs: number;
  /** Lookups served by the cache. */
  pipelineCacheHits: number;
}

/** What to print while compiling, from DIFFTX_DEBUG_PIPELINES and DIFFTX_DEBUG_WGSL. */
export interface PipelineDebug {
  /** Print each pipeline's key and compile time. */
  readonly timings: boolean;
  /** Print the WGSL of the programs whose key matches. */
  readonly wgsl: RegExp | null;
}

/** The debug switches of this process's environment (none outside Node). */
export function debugFromEnvironment(): PipelineDebug {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
  const wgsl = env.DIFFTX_DEBUG_WGSL;
  let pattern: RegExp | null = null;
  if (wgsl && wgsl !== '0') {
    try {
      pattern = wgsl === '1' || wgsl === 'true' ? /./ : new RegExp(wgsl);
    } catch {
      throw new ArgumentError('DIFFTX_DEBUG_WGSL', "'1' or a regular expression over program keys", wgsl);
    }
  }
  return { timings: Boolean(env.DIFFTX_DEBUG_PIPELINES), wgsl: pattern };
}

type PipelineLayout = GPUPipelineLayout & { bindGroupLayout: GPUBindGroupLayout };

export class PipelineCache {
  readonly stats: PipelineStats = { pipelinesCreated: 0, pipelineMs: 0, pipelineCacheHits: 0 };
  readonly #device: GPUDevice;
  readonly #errors: DeviceErrors;
  readonly #debug: PipelineDebug;
  readonly #pipelines = new Map<string, { pipeline: GPUComputePipeline; program: Program }>();
  readonly #layouts = new Map<string, PipelineLayout>();

  constructor(device: GPUDevice, errors: DeviceErrors, debug: PipelineDebug = debugFromEnvironment()) {
    this.#device = device;
    this.#errors = errors;
    this.#debug = debug;
  }

  /** The pipeline of a program, compiled once per key. */
  get(program: Program): GPUComputePipeline {
    const cached = this.#pipelines.get(program.key);
    if (cached) {
      this.stats.pipelineCacheHits++;
      return cached.pipeline;
    }
    const limit = this.#device.limits.maxComputeWorkgroupStorageSize;
    if (program.workgroupBytes !== undefined && program.workgroupBytes > limit) {
      throw new DeviceError(
        BACKEND_NAME,
        'internal',
        `program ${program.key} needs ${program.workgroupBytes} bytes of workgroup memory; the device allows ${limit}`,
      );
    }
    const layout = this.#layout(program.layout);
    const code = program.code();
    if (this.#debug.wgsl?.test(program.key)) console.error(`// webgpu: WGSL of ${program.key}\n${code}`);
    const started = performance.now();
    const pipeline = this.#errors.scoped('validation', `compiling ${program.key}`, () => {
      const module = this.#device.createShaderModule({ code, label: program.key });
      return this.#device.createComputePipeline({
        layout,
        compute: { module, entryPoint: 'main' },
        label: program.key,
      });
    });
    const elapsed = performance.now() - started;
    this.#pipelines.set(program.key, { pipeline, program });
    this.stats.pipelinesCreated++;
    this.stats.pipelineMs += elapsed;
    if (this.#debug.timings) console.error(`webgpu: compiled ${program.key} in ${elapsed.toFixed(0)} ms`);
    return pipeline;
  }

  /** The bind-group layout of a binding signature (see Program.layout). */
  bindGroupLayout(signature: string): GPUBindGroupLayout {
    return this.#layout(signature).bindGroupLayout;
  }

  /** The key and WGSL source of every pipeline compiled so far, in the order they were compiled. */
  sources(): Array<{ key: string; wgsl: string }> {
    return [...this.#pipelines.values()].map(({ program }) => ({ key: program.key, wgsl: program.code() }));
  }

  clear(): void {
    this.#pipelines.clear();
    this.#layouts.clear();
  }

  #layout(signature: string): PipelineLayout {
    const cached = this.#layouts.get(signature);
    if (cached) return cached;
    const COMPUTE = 4; // GPUShaderStage.COMPUTE (the global may not exist in Node)
    const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } }];
    [...signature].forEach((kind, i) => {
      const type = kind === 'w' ? 'storage' : 'read-only-storage';
      entries.push({ binding: i + 1, visibility: COMPUTE, buffer: { type } });
    });
    const bindGroupLayout = this.#device.createBindGroupLayout({ entries, label: signature });
    const layout = Object.assign(this.#device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] }), {
      bindGroupLayout,
    });
    this.#layouts.set(signature, layout);
    return layout;
  }
}
