import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

// One self-contained file: the workspace packages are bundled in, so `node dist/difftx.js` runs where
// no node_modules exist (the GPU machine). Native and optional packages stay external. So the published
// package needs at run time only what package.json's `dependencies` list: the backends whose prebuilt
// addons the bundled loaders find beside it, and the Brown corpus's files; the rest are devDependencies.
export default defineConfig({
  entry: { difftx: 'src/difftx.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  clean: true,
  noExternal: [/^@diff-transformer\//],
  // No chunks: the chart's import('vega') is inlined (and still runs only when a chart is drawn), so
  // the bundle stays one file.
  splitting: false,
  // Dawn's binding (native dawn.node) is found at run time: the webgpu package, DIFFTX_DAWN_NODE, or a
  // dawn.node next to the bundle (see packages/backend-webgpu/README.md).
  external: ['webgpu'],
  banner: { js: '#!/usr/bin/env node' },
  define: { __DIFFTX_VERSION__: JSON.stringify(version) },
});
