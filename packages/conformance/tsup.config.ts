import { defineConfig } from 'tsup';

// dist/ is emptied by the build script: two configs building in parallel must not clean each other.

export default defineConfig([
  // The suite: ESM + CJS, usable from the CLI and any test runner.
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    target: 'node20',
  },
  // The vitest adapter: ESM only, since vitest refuses to be require()d.
  {
    entry: ['src/vitest.ts'],
    format: ['esm'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    external: ['vitest'],
  },
]);
