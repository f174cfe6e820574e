import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  // Dawn's Node binding is optional and native: it is looked up at run time, never bundled.
  external: ['webgpu'],
  // Keep `node:` on the Node-only dynamic imports, so browser bundlers know them for builtins.
  removeNodeProtocol: false,
  // import.meta.url in the CJS build too (the Node loader looks for dawn.node next to this file).
  shims: true,
});
