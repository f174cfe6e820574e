#!/usr/bin/env node
// Bundles scripts/gpu-check.ts with everything it imports (core, conformance, this package) into
// dist-gpu/gpu-check.js, a single file that runs on the GPU machine without node_modules.
import { build } from 'tsup';

await build({
  entry: { 'gpu-check': 'scripts/gpu-check.ts' },
  outDir: 'dist-gpu',
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  noExternal: [/^@diff-transformer\//],
  clean: true,
  silent: true,
  config: false,
});
process.stderr.write('backend-cuda: wrote dist-gpu/gpu-check.js\n');
