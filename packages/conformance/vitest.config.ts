import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Whole-suite runs take seconds alone and longer when turbo runs every package's tests at once on a
    // 2-core machine: the default 5 s timeout is too tight for them.
    testTimeout: 60_000,
  },
});
