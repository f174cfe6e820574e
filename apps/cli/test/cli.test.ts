import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SWIFTSHADER_ICD } from '@diff-transformer/backend-webgpu';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));

// Without a GPU, Dawn runs on SwiftShader, whose Vulkan ICD (SWIFTSHADER_ICD) ships with Debian's chromium.
const { VK_ICD_FILENAMES: _icd, VK_DRIVER_FILES: _drivers, ...NO_VULKAN_DRIVERS } = process.env;
const WITH_SWIFTSHADER =
  process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES
    ? process.env
    : { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD };

function difftx(...args: string[]) {
  return run(process.env, CLI, ...args);
}

function run(env: NodeJS.ProcessEnv, script: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 600_000, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('difftx', () => {
  it('info --json lists the CPU backend as available with its device', () => {
    const r = difftx('info', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    const cpu = doc.backends.find((b: { name: string }) => b.name === 'cpu');
    expect(cpu).toMatchObject({ name: 'cpu', available: true });
    expect(typeof cpu.device).toBe('string');
    expect(doc.default).toBeTypeOf('string');
    // Which cpu engine runs and why: here the native one, compiled by the build, chosen by CPUID.
    expect(doc.cpuEngine.engine).toBe('native');
    expect(doc.cpuEngine.reason).toMatch(/^native (avx512|avx2|baseline) \((CPUID|arm64)/);
    expect(difftx('info').stdout).toMatch(/^cpu engine: native — native (avx512|avx2|baseline) /m);
  });

  it('info lists cuda, and where it cannot run here, the reason', () => {
    const doc = JSON.parse(difftx('info', '--json').stdout);
    const cuda = doc.backends.find((b: { name: string }) => b.name === 'cuda');
    expect(cuda).toMatchObject({ name: 'cuda', priority: 300 });
    if (!cuda.available) {
      expect(cuda.reason).toMatch(/CUDA|cuda|native addon/);
      expect(difftx('info').stdout).toMatch(/cuda\s+300\s+unavailable\s+\S/);
    }
  });

  it('exits 2 with one line for a bad flag, an unknown backend or an unknown command', () => {
    for (const args of [
      ['info', '--bogus'],
      ['bench', '--backend', 'tpu', '--op', 'matmul', '--shape', '2x2x2'],
      ['conformance', '--backend', 'tpu'],
      ['frobnicate'],
      ['bench', '--op', 'matmul', '--shape', '2x2'],
      ['bench', '--op', 'matmul', '--threads', '2'],
      ['bench', '--backend', 'cpu', '--op', 'matmul', '--threads', '0'],
      ['bench', '--backend', 'cpu', '--op', 'matmul', '--engine', 'gpu'],
      ['conformance', '--engine', 'typescript'],
      ['conformance', '--backend', 'cpu', '--engine', 'gpu'],
      ['conformance', '--backend', 'cpu', '--threads', '0'],
    ]) {
      const r = difftx(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^difftx: /);
    }
    for (const [args, message] of [
      [['info', 'extra-arg'], /^difftx: info: unexpected argument "extra-arg" \(it takes options only\)$/],
      [['conformance', 'cpu'], /conformance: unexpected argument "cpu"/],
      [['bench', '--op', 'matmul', 'now'], /bench: unexpected argument "now"/],
      [['bench', '--op', 'matmul', '--runs', '-1'], /--runs: expected an integer ≥ 1, got "-1"/],
      [
        ['conformance', '--backend', 'cpu', '--filter', 'matmull'],
        /--filter "matmull" matches none of the \d+ cases \(names look like "/,
      ],
    ] as const) {
      const r = difftx(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(message);
    }
    expect(difftx('conformance', '--backend', 'tpu').stderr).toMatch(
      /unknown backend 'tpu'; registered backends: cuda, webgpu, cpu;/,
    );
    expect(difftx('bench', '--op', 'forward', '--dtype', 'bfloat16').stderr).toMatch(/--dtype bfloat16 needs --op/);
    expect(difftx('bench', '--op', 'matmul', '--dtype', 'int8').code).toBe(2);
  });

  it('bench on a shape too large for the cpu backend: its typed out-of-memory error, one line, exit 1', () => {
    const r = difftx('bench', '--backend', 'cpu', '--op', 'matmul', '--shape', '100000x100000x100000');
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^difftx: backend 'cpu': out of memory: /);
    expect(r.stderr).not.toMatch(/RangeError|\n\s+at /);
  });

  it('conformance --backend cpu --json passes every case, at least 60 of them', () => {
    const r = difftx('conformance', '--backend', 'cpu', '--json');
    expect(r.stderr).not.toMatch(/\bfail\b.*—/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.backend).toBe('cpu');
    expect(report.cases.length).toBeGreaterThanOrEqual(60);
    expect(report.summary).toEqual({ pass: report.cases.length, fail: 0, unsupported: 0 });
    for (const c of report.cases) {
      expect(Object.keys(c)).toEqual(
        expect.arrayContaining([
          'name',
          'kernel',
          'status',
          'nmse',
          'maxAbsError',
          'elementError',
          'tolerance',
          'atol',
          'rtol',
        ]),
      );
      expect(c.nmse).toBeLessThanOrEqual(c.tolerance);
      expect(c.elementError).toBeLessThanOrEqual(1);
    }
    const kernels = new Set(report.cases.map((c: { kernel: string }) => c.kernel));
    for (const k of ['matmul', 'diffAttention', 'attention', 'rotary', 'rmsNorm']) expect(kernels).toContain(k);
  });

  it('conformance --engine and --threads run a cpu backend of their own', () => {
    for (const [flag, value, device] of [
      ['--engine', 'typescript', /^CPU \(TypeScript, 1 thread, float32\)$/],
      ['--engine', 'wasm-simd128', /^CPU \(WebAssembly SIMD128, \d+ threads?, float32\)$/],
      // 'auto' takes the native engine, which the build compiles for this machine's instruction set.
      ['--threads', '1', /^CPU \(native (AVX-512|AVX2|baseline|NEON), 1 thread, float32\)$/],
    ] as const) {
      const r = difftx(
        'conformance',
        '--backend',
        'cpu',
        flag,
        value,
        '--filter',
        '^(adamw|embeddingBackward)/',
        '--json',
      );
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(report.device).toMatch(device);
      expect(report.cases.length).toBeGreaterThan(0);
      expect(report.summary).toEqual({ pass: report.cases.length, fail: 0, unsupported: 0 });
    }
  });

  it('conformance --filter narrows the cases and --json on all gives an array', () => {
    const r = difftx('conformance', '--backend', 'all', '--filter', '^matmul', '--json');
    expect(r.code).toBe(0);
    const reports = JSON.parse(r.stdout);
    expect(Array.isArray(reports)).toBe(true);
    const cpu = reports.find((x: { backend: string }) => x.backend === 'cpu');
    expect(cpu.cases.length).toBeGreaterThan(0);
    expect(cpu.cases.every((c: { name: string }) => /^matmul/.test(c.name))).toBe(true);
  });

  it('conformance prints a row per kernel family (a row per case with --verbose)', () => {
    const summary = difftx('conformance', '--backend', 'cpu', '--filter', '^(matmul|softmax)/');
    expect(summary.code).toBe(0);
    const matmuls = JSON.parse(difftx('conformance', '--backend', 'cpu', '--filter', '^matmul/', '--json').stdout).cases
      .length as number;
    expect(summary.stdout).toMatch(/^kernel\s+cpu\n-+\s+-+\n/);
    expect(summary.stdout).toMatch(new RegExp(`\\nmatmul\\s+${matmuls}/${matmuls}\\s+\\d\\.\\de-\\d+\\n`));
    expect(summary.stdout).toMatch(/\nsoftmax\s+(\d+)\/\1\s/);
    expect(summary.stdout).not.toContain('matmul/');
    expect(summary.stderr).toMatch(new RegExp(`\\n {2}matmul: ${matmuls}/${matmuls} pass \\(\\d+\\.\\d s\\)\\n`));
    const verbose = difftx('conformance', '--backend', 'cpu', '--filter', '^(matmul|softmax)/', '--verbose');
    expect(verbose.code).toBe(0);
    expect(verbose.stdout).toMatch(/^case\s+kernel\s+cpu\n/);
    expect(verbose.stdout.match(/\nmatmul\/\S[^\n]*\s+matmul\s+pass /g)).toHaveLength(matmuls);
    expect(verbose.stderr).toMatch(/\[1\/\d+\] pass {8}matmul\//);
  });

  it('conformance --large adds the large cases and --strict keeps a full backend passing', () => {
    const plain = JSON.parse(difftx('conformance', '--backend', 'cpu', '--filter', '^matmul', '--json').stdout);
    const r = difftx('conformance', '--backend', 'cpu', '--filter', '^matmul', '--strict', '--large', '--json');
    expect(r.code).toBe(0);
    const large = JSON.parse(r.stdout);
    const names = large.cases.map((c: { name: string }) => c.name);
    expect(names.length).toBeGreaterThanOrEqual(plain.cases.length + 10);
    expect(names).toContain('matmul/M520 K45 N530 transposeA transposeB');
    expect(large.summary).toEqual({ pass: names.length, fail: 0, unsupported: 0 });
  });

  it('bench --json reports the median, GFLOP/s and tokens/s in the documented shape', () => {
    const r = difftx(
      'bench',
      '--backend',
      'cpu',
      '--op',
      'diff-attention',
      '--shape',
      '1,64,2,16',
      '--shape',
      '1,33,1,8',
      '--runs',
      '3',
      '--json',
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.backend).toBe('cpu');
    expect(doc.results).toHaveLength(2);
    for (const result of doc.results) {
      expect(result.op).toBe('diff-attention');
      expect(result.medianMs).toBeGreaterThan(0);
      expect(result.gflops).toBeGreaterThan(0);
      expect(result.tokensPerSecond).toBeGreaterThan(0);
    }
    expect(r.stderr).toContain('diff-attention 1,64,2,16');
    expect(doc.results[0].dtype).toBe('float32');
    const repeated = JSON.parse(
      difftx(
        'bench',
        '--backend',
        'cpu',
        '--op',
        'matmul',
        '--shape',
        '8x8x8',
        '--runs',
        '2',
        '--repeat',
        '3',
        '--json',
      ).stdout,
    );
    expect(repeated.results[0].medianMs).toBeGreaterThan(0);
  });

  it('bench times the backward kernels and a training step beside the forward, side by side', () => {
    const bench = (op: string, shape: string) => {
      const r = difftx('bench', '--backend', 'cpu', '--op', op, '--shape', shape, '--runs', '2', '--json');
      expect(r.code, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout).results[0];
      expect(result).toMatchObject({ op, shape, runs: expect.any(Number) });
      expect(result.minMs).toBeLessThanOrEqual(result.medianMs);
      expect(result.maxMs).toBeGreaterThanOrEqual(result.medianMs);
      expect(result.gflops).toBeGreaterThan(0);
      expect(result.tokensPerSecond).toBeGreaterThan(0);
      return result;
    };
    const diff = bench('diff-attention-backward', '1,96,2,16');
    expect(diff.flopCount).toMatch(/^2\.5 × the forward/);
    // 2.5 × 6·B·T²·d·H FLOPs: the reported rate is that over the median time.
    expect(diff.gflops).toBeCloseTo((15 * 96 * 96 * 16 * 2) / diff.medianMs / 1e6, 1);
    expect(bench('attention-backward', '1,96,2,16').flopCount).toMatch(/^2\.5 × the forward/);
    const step = bench('train-step', '1,16');
    expect(step.forward.tokensPerSecond).toBeGreaterThan(0);
    expect(step.ratioToForward).toBeCloseTo(step.tokensPerSecond / step.forward.tokensPerSecond, 2);
    // The heap holds the model and its moments before the step, and the step's activations on top.
    expect(step.heap.baseBytes).toBeGreaterThan(0);
    expect(step.heap.peakBytes).toBeGreaterThan(step.heap.baseBytes);
    expect(difftx('bench', '--op', 'matmul', '--op', 'forward', '--shape', '1,8').stderr).toMatch(
      /--shape needs exactly one --op/,
    );
  });

  it('bench --engine typescript runs the TypeScript kernels', () => {
    const r = difftx(
      'bench',
      '--backend',
      'cpu',
      '--op',
      'matmul',
      '--shape',
      '32x32x32',
      '--engine',
      'typescript',
      '--runs',
      '3',
      '--json',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).device).toBe('CPU (TypeScript, 1 thread, float32)');
  });

  it('bench --threads N runs the cpu backend on N threads', () => {
    for (const threads of ['1', '2']) {
      const r = difftx(
        'bench',
        '--backend',
        'cpu',
        '--op',
        'matmul',
        '--shape',
        '96x80x64',
        '--threads',
        threads,
        '--runs',
        '3',
        '--json',
      );
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.device).toMatch(new RegExp(`, ${threads} threads?, float32\\)$`));
      expect(doc.results[0].gflops).toBeGreaterThan(0);
    }
  });
});

/** Whether this machine has a Vulkan driver manifest where the loader looks by default. */
function hasVulkanManifest(): boolean {
  return ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'].some(
    (dir) => existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.json')),
  );
}

describe('difftx with the webgpu backend', () => {
  const webgpuInfo = (env: NodeJS.ProcessEnv, script = CLI) => {
    const r = run(env, script, 'info', '--json');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout).backends.find((b: { name: string }) => b.name === 'webgpu');
  };

  it('info says why webgpu is unavailable: no Vulkan driver, or no dawn.node where one was named', () => {
    if (!hasVulkanManifest()) {
      const noDriver = run(NO_VULKAN_DRIVERS, CLI, 'info', '--json');
      const webgpu = JSON.parse(noDriver.stdout).backends.find((b: { name: string }) => b.name === 'webgpu');
      expect(webgpu.reason).toMatch(/^no Vulkan driver is installed .*VK_ICD_FILENAMES=/);
      // Said before Dawn is loaded, so its native warning never reaches stderr.
      expect(noDriver.stderr).not.toMatch(/vkCreateInstance/);
    }
    const none = webgpuInfo({ ...NO_VULKAN_DRIVERS, VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(none).toMatchObject({ name: 'webgpu', priority: 200, available: false });
    expect(none.reason).toMatch(/no WebGPU adapter/);
    const missing = webgpuInfo({ ...WITH_SWIFTSHADER, DIFFTX_DAWN_NODE: '/nonexistent/dawn.node' });
    expect(missing.available).toBe(false);
    expect(missing.reason).toContain('dawn.node not found at /nonexistent/dawn.node');
  }, 60_000);

  it.runIf(existsSync(SWIFTSHADER_ICD))(
    'on SwiftShader (a software adapter) ranks below cpu, says why, and runs only when named',
    () => {
      const r = run(WITH_SWIFTSHADER, CLI, 'info', '--json');
      const doc = JSON.parse(r.stdout);
      const webgpu = doc.backends.find((b: { name: string }) => b.name === 'webgpu');
      if (!/software adapter/.test(webgpu.device)) return; // a real GPU's Vulkan driver was chosen
      expect(doc.default).toBe('cpu');
      expect(webgpu).toMatchObject({ priority: 200, effectivePriority: 50, available: true });
      expect(webgpu.ranking).toMatch(/^priority 200 lowered to 50: a software adapter .*SwiftShader/);
      const text = run(WITH_SWIFTSHADER, CLI, 'info').stdout;
      expect(text).toMatch(/^cpu \*\s+100\s+available/m);
      expect(text).toMatch(/^webgpu\s+50 \(200\)\s+available/m);
      expect(text).toMatch(/^ {2}webgpu\s+priority 200 lowered to 50: .*ask for it by name/m);
      // Commands without --backend take the cpu backend; --backend webgpu still runs there.
      const bench = (...backend: string[]) =>
        run(WITH_SWIFTSHADER, CLI, 'bench', ...backend, '--op', 'matmul', '--shape', '8x8x8', '--runs', '1', '--json');
      expect(JSON.parse(bench().stdout).backend).toBe('cpu');
      expect(JSON.parse(bench('--backend', 'webgpu').stdout).backend).toBe('webgpu');
    },
    120_000,
  );

  it.runIf(existsSync(SWIFTSHADER_ICD))(
    'on SwiftShader: available, conformance passes and bench measures',
    () => {
      expect(webgpuInfo(WITH_SWIFTSHADER)).toMatchObject({ available: true, device: expect.stringMatching(/^WebGPU/) });
      // A cross-section through the bundle; the package's own tests run every case (and the README says
      // how long the full `difftx conformance --backend webgpu` takes here).
      const filter =
        '^(matmul/M7 K33|rmsNorm/|diffAttention/v1 decode|diffAttention/v2 shared keys, per-token λ, gqa2|' +
        'attention/mha H4|decode/diff mha|generate/greedy diff mha)';
      const conformance = run(
        WITH_SWIFTSHADER,
        CLI,
        'conformance',
        '--backend',
        'webgpu',
        '--filter',
        filter,
        '--json',
      );
      expect(conformance.code, conformance.stderr).toBe(0);
      const report = JSON.parse(conformance.stdout);
      expect(report.backend).toBe('webgpu');
      expect(report.cases.length).toBeGreaterThanOrEqual(8);
      expect(report.summary).toEqual({ pass: report.cases.length, fail: 0, unsupported: 0 });
      const bench = run(
        WITH_SWIFTSHADER,
        CLI,
        'bench',
        '--backend',
        'webgpu',
        '--op',
        'matmul',
        '--shape',
        '64x64x64',
        '--runs',
        '2',
        '--json',
      );
      expect(bench.code, bench.stderr).toBe(0);
      expect(JSON.parse(bench.stdout).results[0]).toMatchObject({
        op: 'matmul',
        shape: '64x64x64',
        gflops: expect.any(Number),
      });
    },
    300_000,
  );

  it.runIf(existsSync(SWIFTSHADER_ICD))(
    'the bundle alone finds dawn.node beside it (no node_modules)',
    () => {
      const dawn = join(
        dirname(createRequire(import.meta.url).resolve('webgpu')),
        'dist',
        `${process.platform}-${process.arch}`,
        'dawn.node',
      );
      const dir = mkdtempSync(join(tmpdir(), 'difftx-bundle-'));
      try {
        copyFileSync(CLI, join(dir, 'difftx.js'));
        symlinkSync(dawn, join(dir, 'dawn.node'));
        const info = webgpuInfo(WITH_SWIFTSHADER, join(dir, 'difftx.js'));
        expect(info).toMatchObject({ available: true });
        expect(info.device).toContain(`dawn.node (${join(dir, 'dawn.node')})`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
