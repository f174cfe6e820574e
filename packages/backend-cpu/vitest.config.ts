import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests import the package by name, as users do; resolve it to the source so no build is needed.
    alias: [
      {
        find: /^@diff-transformer\/backend-cpu$/,
        replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // The long-context tests stream 8192² and 32768 keys through plain TypeScript.
    testTimeout: 120_000,
  },
});
