import { defineConfig } from 'tsup';

// Two entries: the browser-safe main entry and './node' (fs access). Splitting puts the code they share
// in common chunks, so both see one copy of core (one registry, one set of error classes for instanceof).
export default defineConfig({
  entry: { index: 'src/index.ts', node: 'src/node/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  target: 'node20',
});
