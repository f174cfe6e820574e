/**
 * The CUDA training kernels cannot run here (no GPU), so their index math is checked by a lane-level NumPy
 * emulation of the kernels (emulation/run.py): the statistics the forward kernels save and the attention
 * backward against a float64 reference, with negative controls that must be caught. It runs where python3
 * with NumPy is present and says loudly why it is skipped where not.
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
  kind: 'reference' | 'statistics' | 'backward' | 'embedding' | 'negative';
  name: string;
  pass: boolean;
  detail: string;
}

describe('lane-level emulation of the training attention kernels (NumPy)', () => {
  it.runIf(numpy)(
    'statistics, backward and embeddingBackward match float64 on every shape, and every deliberate bug is caught',
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
      expect(count('statistics')).toBeGreaterThanOrEqual(10);
      expect(count('backward')).toBe(count('statistics'));
      expect(count('embedding')).toBeGreaterThanOrEqual(4);
      expect(count('negative')).toBeGreaterThanOrEqual(11);
      // Both forward kernels, split keys included, fed the backward.
      const kernels = results.filter((r) => r.kind === 'statistics').map((r) => r.detail);
      expect(kernels.some((d) => d.startsWith('flash kernel'))).toBe(true);
      expect(kernels.some((d) => d.startsWith('rows kernel with'))).toBe(true);
    },
    600_000,
  );

  it.skipIf(numpy)(`needs python3 with NumPy: ${why}`, () => {});
  if (!numpy) console.warn(`[backend-cuda] emulation of the CUDA kernels SKIPPED: ${why}`);
});
