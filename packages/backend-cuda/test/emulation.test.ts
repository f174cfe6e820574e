/**
 * The CUDA kernels cannot run here (no GPU), so their index math is checked by a lane-level NumPy emulation of
 * the kernels (emulation/run.py): both attention forwards (the flash kernel in every dtype, its key splits, the
 * rows kernel) with the statistics they save, the attention backward, embeddingBackward and the m ≤ 4 matmul,
 * against a float64 reference, with negative controls that must be caught. It runs where python3 with NumPy is
 * present and says loudly why it is skipped where not.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const packageRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const probe = spawnSync('python3', ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
const numpy = probe.status === 0;
const why = probe.error ? `python3 not found (${probe.error.message})` : `import numpy failed: ${probe.stderr.trim()}`;
const scratch = mkdtempSync(join(tmpdir(), 'dtx-cuda-emulation-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface EmulationResult {
  kind: 'reference' | 'forward' | 'statistics' | 'backward' | 'embedding' | 'matmul' | 'negative';
  name: string;
  pass: boolean;
  detail: string;
}

describe('lane-level emulation of the CUDA kernels (NumPy)', () => {
  it.runIf(numpy)(
    'attention forwards, statistics, backward, embeddingBackward and GEMV match float64; every bug is caught',
    () => {
      const json = join(scratch, 'emulation.json');
      // -B: no __pycache__ in the package.
      const run = spawnSync('python3', ['-B', join(packageRoot, 'emulation', 'run.py'), '--json', json], {
        encoding: 'utf8',
        timeout: 600_000,
      });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      const { results } = JSON.parse(readFileSync(json, 'utf8')) as { results: EmulationResult[] };
      const count = (kind: EmulationResult['kind']) => results.filter((r) => r.kind === kind).length;
      expect(results.filter((r) => !r.pass)).toEqual([]);
      expect(count('reference')).toBeGreaterThanOrEqual(4);
      expect(count('forward')).toBeGreaterThanOrEqual(25);
      expect(count('statistics')).toBe(count('forward'));
      expect(count('backward')).toBe(count('forward'));
      expect(count('embedding')).toBeGreaterThanOrEqual(4);
      expect(count('matmul')).toBeGreaterThanOrEqual(20);
      expect(count('negative')).toBeGreaterThanOrEqual(18);
      // Every path of the forward ran: the flash kernel with 2 and 3 stages and with split keys, float32 included,
      // and the rows kernel with and without split keys.
      const forward = results.filter((r) => r.kind === 'forward');
      const ran = (pattern: RegExp) => forward.some((r) => pattern.test(`${r.name} ${r.detail}`));
      expect(ran(/\[f32\] flash kernel/)).toBe(true);
      expect(ran(/flash kernel, 2 stages/)).toBe(true);
      expect(ran(/flash kernel, 3 stages, \d+ key splits/)).toBe(true);
      expect(ran(/rows kernel with \d+ key splits/)).toBe(true);
      expect(ran(/rows kernel, output/)).toBe(true);
    },
    600_000,
  );

  it.skipIf(numpy)(`needs python3 with NumPy: ${why}`, () => {});
  if (!numpy) console.warn(`[backend-cuda] emulation of the CUDA kernels SKIPPED: ${why}`);
});
