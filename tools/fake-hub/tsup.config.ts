import { defineConfig } from 'tsup';

// Node-only test plumbing: one ES module entry with its declarations.
export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
