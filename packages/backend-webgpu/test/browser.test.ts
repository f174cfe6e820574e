/**
 * The conformance suite inside a real browser: headless Chromium with WebGPU on SwiftShader, the
 * backend using navigator.gpu. Fails naming every case that failed in the page, and checks that a
 * broken kernel does fail there.
 *
 * The page runs a cross-section of the suite, not all of it: test/conformance.test.ts already runs
 * every case through Dawn in Node, on the same WGSL, and a second full run here doubled this package's
 * test time (on SwiftShader most of it is compiling pipelines). What the page adds is the browser's
 * side — navigator.gpu, the bundle as a web app loads it, Chromium's own validation of each shader and
 * its limits — so the cross-section compiles each kind of program at least once:
 *   - every kernel of the contract that the backend implements, at least one case each (the first test
 *     below asks for a case of each kernel the backend's table has, so kernels that land later, such as
 *     the training kernels, join the list with them);
 *   - matmul in the medium tile with both operands transposed, the skinny tile and the decode GEMV;
 *   - differential attention per-map (V1, GQA, a 16-query prefill) and at head width 128 (the most
 *     workgroup memory, where a browser's limits would bite first), V2's shared keys decoding against
 *     a larger cache, and standard attention decoding;
 *   - the model path: one configuration (DIFF, GQA, untied, half rotary, 3 layers) through forward,
 *     KV-cache decoding and greedy generation in V2, so its pipelines are mostly shared;
 *   - training on the same shapes where it can (the attention backward of the V1 prefill and the V2
 *     decode above, whose forward pipelines it shares; standard attention's at head width 128), and
 *     the same configuration's whole-model gradients, and two rules op by op (rotary, diffAttention).
 * A renamed or removed case fails the test below, which names it: choose its replacement here.
 */
import type { ConformanceReport } from '@diff-transformer/conformance';
import { createWebGPUBackend } from '@diff-transformer/backend-webgpu';
import { conformanceCases } from '@diff-transformer/conformance';
import { KERNEL_NAMES, TRAINING_KERNEL_NAMES, type KernelName } from '@diff-transformer/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, chromiumAvailable, openBrowserSuite, type BrowserSuite } from './browser/harness.js';

const BROWSER_CASES = [
  'matmul/M33 K129 N7 transposeA transposeB',
  'matmul/M1 K1 N7 batch [5] transposeA',
  'matmul/M1 K33 N129 batch [4] shared weight transposeB',
  'embedding/vocab 129 width 33 ids [2, 7]',
  'rmsNorm/x [7, 33] with weight',
  'rotary/half d64 r32 B1 T7 H2 offset 5',
  'swiglu/gate in ±90 [2, 64]',
  'add/a of 1e3 plus b of 1e-3 [2, 3, 129]',
  'sigmoid/x in ±100 [2, 64]',
  'diffAttention/v1 gqa2 H4 Hkv2 d32 T33 B2 subln',
  'diffAttention/v1 H1 d128 T1 subln',
  'diffAttention/v2 decode T1 keyOffset 16 keyLength 17 of cache 24, gqa2 d16',
  'attention/decode T1 keyOffset 32 keyLength 33 of cache 48, gqa2 d32',
  'softmax/x [2, 3, 129] at temperature 0.7',
  'argmax/ties go to the lowest index [6, 16]',
  'narrow/[7, 33, 5] axis 1 [3, 23)',
  'cacheWrite/[1, 20, 2, 8] 5 at 0, then 1 at 5, then 3 at 6',
  'exp/x in [−100, 20] [2, 129] (underflow to 0, e^20)',
  'mul/a, b [2, 3, 129]',
  'scale/0.37·x + 0.8 [2, 129] (λinit)',
  'sumSquares/x [257, 1031] of std 1e-3',
  'swigluBackward/gate in ±90 [1, 64] (σ saturates)',
  'rmsNormBackward/x [515, 64] (dWeight over many rows)',
  'embeddingBackward/vocab 5 width 64 ids [4, 257]',
  'crossEntropy/N 5 V 1031 with 2 ignored targets',
  'adamw/step 1000, clipped gradient (gradScale 0.25) [2, 129]',
  'diffAttentionWithStatistics/v1 gqa2 H4 Hkv2 d32 T33 B2 subln',
  'diffAttentionBackward/v1 gqa2 H4 Hkv2 d32 T33 B2 subln',
  'diffAttentionBackward/v2 decode T1 keyOffset 16 keyLength 17 of cache 24, gqa2 d16',
  'attentionWithStatistics/decode T1 keyOffset 32 keyLength 33 of cache 48, gqa2 d32',
  'attentionBackward/mha H2 d128 T1',
  'model/diff gqa2 untied half L3 B2 T7',
  'decode/diff gqa2 untied half L3 B1 steps 5+1+1+1+1+1+1',
  'generate/greedy diff-v2 gqa2 untied half L3 equals the reference argmax continuation',
  'opGradient/rotary x [1, 3, 2, 8] half, partial r = 4 of d = 8',
  'opGradient/diffAttention V1 GQA H2 Hkv1, non-causal',
  'gradients/diff gqa2 untied half L3 B1 T9',
];

/** A regular expression that matches exactly the names given. */
function exactly(names: readonly string[]): string {
  return `^(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`;
}

describe('the cross-section run in the browser', () => {
  it('names cases of the suite: one at least for each kernel the backend implements, and the model path', async () => {
    const all = conformanceCases();
    const names = new Set(all.map((c) => c.name));
    expect(
      BROWSER_CASES.filter((name) => !names.has(name)),
      'not in the suite (renamed?)',
    ).toEqual([]);
    const covered = new Set(all.filter((c) => BROWSER_CASES.includes(c.name)).map((c) => c.kernel));
    const backend = await createWebGPUBackend();
    try {
      const implemented = (k: KernelName) => typeof backend.kernels[k] === 'function';
      const groups = [...KERNEL_NAMES.filter(implemented), 'model', 'decode', 'generate'];
      if (TRAINING_KERNEL_NAMES.every(implemented)) groups.push('opGradient', 'gradients');
      for (const group of groups) expect(covered, `a case of ${group}`).toContain(group);
    } finally {
      await backend.dispose();
    }
  });
});

// CI installs Debian's chromium (scripts/setup.sh); elsewhere a missing browser skips, loudly.
const required = process.env.CI === 'true' || process.env.CI === '1';
const run = chromiumAvailable() || required;

describe.runIf(run)(`conformance in headless Chromium (${CHROMIUM})`, () => {
  let suite: BrowserSuite;
  beforeAll(async () => {
    suite = await openBrowserSuite();
  }, 120_000);
  afterAll(async () => {
    await suite?.close();
  });

  function failures(report: ConformanceReport): string[] {
    return report.cases.filter((c) => c.status !== 'pass').map((c) => `${c.status}: ${c.name} — ${c.message ?? ''}`);
  }

  it('the cross-section of the suite passes in the page', async () => {
    const result = await suite.run({ filter: exactly(BROWSER_CASES) });
    if ('unavailable' in result) throw new Error(`WebGPU is unavailable in Chromium: ${result.unavailable}`);
    expect(result.device).toMatch(/^WebGPU \(.*navigator\.gpu/);
    expect(failures(result), `failed in the page:\n${failures(result).join('\n')}`).toEqual([]);
    const expected = conformanceCases().filter((c) => BROWSER_CASES.includes(c.name));
    expect(result.cases.map((c) => c.name)).toEqual(expected.map((c) => c.name));
    expect(result.summary.pass).toBe(BROWSER_CASES.length);
    expect(suite.errors).toEqual([]);
  }, 300_000);

  it('a broken kernel fails its cases in the page (the test would catch it)', async () => {
    const result = await suite.run({ filter: '^add/', breakAdd: true });
    if ('unavailable' in result) throw new Error(result.unavailable);
    expect(result.cases.length).toBeGreaterThan(0);
    expect(result.summary.fail).toBe(result.cases.length);
  }, 300_000);
});

if (!run) {
  describe('conformance in headless Chromium', () => {
    it.skip(`needs ${CHROMIUM} (Debian package chromium; scripts/setup.sh installs it)`, () => {});
  });
}
