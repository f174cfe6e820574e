/**
 * The GPU checks as a program: `node gpu-check.js [--json FILE]` (bundled by scripts/gpu-bundle.mjs into
 * dist-gpu/gpu-check.js, which needs no node_modules). Exit code 0 only when every check passes; exit 2
 * when the CUDA backend is unavailable (the reason is printed).
 */
import { writeFileSync } from 'node:fs';
import { listBackends, initializedBackend } from '@diff-transformer/core';
import { register } from '../src/index.js';
import type { CudaBackend } from '../src/backend.js';
import { runGpuChecks } from './gpu-checks.js';

// Explicit: a bundler may drop a bare side-effect import of a module it considers pure.
register();
const jsonFlag = process.argv.indexOf('--json');
const jsonFile = jsonFlag >= 0 ? process.argv[jsonFlag + 1] : undefined;
const info = (await listBackends()).find((b) => b.name === 'cuda');
if (!info?.available) {
  process.stderr.write(`cuda unavailable: ${info?.reason ?? 'not registered'}\n`);
  process.exit(2);
}
const backend = (await initializedBackend('cuda')) as CudaBackend;
process.stderr.write(`cuda: ${backend.device} (addon ${backend.addonPath})\n`);
const results = await runGpuChecks(backend, (line) => process.stderr.write(`${line}\n`));
const failed = results.filter((r) => !r.pass).length;
process.stderr.write(`${results.length - failed} passed, ${failed} failed\n`);
if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ device: backend.device, results }, null, 2));
process.exit(failed === 0 ? 0 : 1);
