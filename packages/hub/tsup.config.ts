import { defineConfig } from 'tsup';

// Two entries, as core has: the browser-safe main entry (Cache API) and './node' (the Hugging Face cache
// on disk). Splitting puts the code they share in common chunks, so both see one set of error classes.
export default defineConfig({
  entry: { index: 'src/index.ts', node: 'src/node/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  target: 'node20',
});
