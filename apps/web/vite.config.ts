import { defineConfig } from 'vite';

/**
 * Cross-origin isolation (COOP/COEP) gives the page SharedArrayBuffer, which the CPU backend's worker
 * threads need; without it the backend still runs, on one thread. Hosting must send the same headers.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  // Relative asset URLs: the build can be hosted under any path.
  base: './',
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS },
  worker: { format: 'es' },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, reportCompressedSize: false },
});
