import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The calibration and runner tests run the whole suite (about 2.5 s alone); turbo runs every
    // package's tests at once, and on a two-core machine a neighbour's build can triple that.
    testTimeout: 60_000,
  },
});
