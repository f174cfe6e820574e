/** The README's table of float32 thresholds must say what TOLERANCES says. */
import { readFileSync } from 'node:fs';
import { KERNEL_NAMES } from '@diff-transformer/core';
import { expect, it } from 'vitest';
import type { CaseKernel } from '../src/index.js';
import { toleranceFor } from '../src/index.js';

it('README lists every float32 threshold of the tolerance table', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(
    readme.indexOf('The float32 defaults:'),
    readme.indexOf('**How these were calibrated.**'),
  );
  const listed = new Map<string, number>();
  for (const [, kernels, value] of section.matchAll(/^\| (`.+?`) \| ([^|]+?) \|$/gm)) {
    for (const [, kernel] of kernels.matchAll(/`(\w+)`/g)) listed.set(kernel, Number.parseFloat(value));
  }
  const all: CaseKernel[] = [...KERNEL_NAMES, 'model', 'decode', 'generate', 'gradients'];
  expect([...listed.keys()].sort()).toEqual([...all].sort());
  for (const kernel of all) expect(listed.get(kernel), kernel).toBe(toleranceFor(kernel, 'any', 'float32'));
});
