import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // The native engine's loader finds the addons relative to this module: import.meta.url in the CJS build too.
  shims: true,
});
