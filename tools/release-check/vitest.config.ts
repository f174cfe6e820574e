import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Packing and an offline npm install of every package take a minute or two on a 2-core machine.
    testTimeout: 600_000,
  },
});
