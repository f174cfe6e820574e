import { defineConfig } from 'tsup';

// Node only (it reads the corpus and writes the report's files): one ES module entry.
export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
