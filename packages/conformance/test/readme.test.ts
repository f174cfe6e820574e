/** The README's table of float32 thresholds must say what TOLERANCES says. */
import { readFileSync } from 'node:fs';
import { KERNEL_NAMES } from '@diff-transformer/core';
import { expect, it } from 'vitest';
import type { CaseKernel } from '../src/index.js';
import { elementBoundFor, toleranceRow } from '../src/index.js';

it('README lists every float32 threshold and element bound of the tolerance table', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(
    readme.indexOf('The float32 defaults:'),
    readme.indexOf('**How these were calibrated.**'),
  );
  const listed = new Map<string, Array<number | undefined>>();
  for (const [, kernels, ...values] of section.matchAll(/^\| (`.+?`) \| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \|$/gm)) {
    // '–': no element bound (a row without atol and rtol).
    const numbers = values.map((v) => (v === '–' ? undefined : Number.parseFloat(v)));
    for (const [, kernel] of kernels.matchAll(/`(\w+)`/g)) listed.set(kernel, numbers);
  }
  const all: CaseKernel[] = [...KERNEL_NAMES, 'model', 'decode', 'generate', 'gradients', 'opGradient'];
  expect([...listed.keys()].sort()).toEqual([...all].sort());
  for (const kernel of all) {
    const row = toleranceRow(kernel, 'any', 'float32');
    expect(listed.get(kernel), kernel).toEqual([row.nmse, row.atol, row.rtol]);
  }
});

it('README lists the half-precision element bounds of the tolerance table', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('| kernels | k |'), readme.indexOf('k = 4 is the output'));
  let rows = 0;
  for (const [, kernels, , f16, bf16] of section.matchAll(/^\| (.+?) \| (\d+) \| ([^|]+?) \| ([^|]+?) \|$/gm)) {
    rows++;
    for (const [, kernel] of kernels.matchAll(/`(\w+)`/g)) {
      for (const [dtype, listed] of [
        ['float16', f16],
        ['bfloat16', bf16],
      ] as const) {
        const { atol, rtol } = elementBoundFor(kernel as CaseKernel, 'any', dtype);
        // Two significant digits in the README.
        expect(Math.abs(Number.parseFloat(listed) - rtol), `${kernel} ${dtype}`).toBeLessThan(0.03 * rtol);
        // softmax, sigmoid and exp keep a tiny atol (relative error only), as the row says.
        expect(atol, `${kernel} ${dtype}`).toBe(/softmax|sigmoid|exp/.test(kernel) ? 2 ** -20 : rtol);
      }
    }
  }
  expect(rows).toBe(3);
});
