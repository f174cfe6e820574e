import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The finite-difference checks of the model's gradients take seconds alone, longer when turbo runs
    // every package's tests at once on a 2-core machine.
    testTimeout: 60_000,
  },
});
