import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The tests spawn the CLI, which runs the whole conformance suite (about 5 s alone); turbo runs every
    // package's tests at once, and on a two-core machine that can double or triple.
    testTimeout: 120_000,
  },
});
