#!/usr/bin/env node
/**
 * The size of the built app (dist/), JavaScript and WebAssembly apart. The CPU backend ships its
 * WebAssembly kernels inside its JavaScript as base64 (no file to serve, no bundler plugin), so this
 * finds each embedded module by its magic number, "\0asm" = "AGFzbQ" in base64, and counts it as
 * WebAssembly: its base64 text, its decoded size, and gzip of both. Run after `pnpm build`.
 *
 *   node scripts/bundle-size.mjs [--json]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

const gzip = (bytes) => gzipSync(bytes, { level: 9 }).length;
const totals = {
  js: { bytes: 0, gzip: 0, files: 0 },
  wasmBase64: { bytes: 0, gzip: 0 },
  wasm: { bytes: 0, gzip: 0, modules: 0 },
  css: { bytes: 0, gzip: 0 },
  models: { bytes: 0 },
};
const perFile = [];

for (const path of files(dist)) {
  const name = relative(dist, path);
  const bytes = readFileSync(path);
  if (name.endsWith('.js')) {
    let text = bytes.toString('utf8');
    const modules = [...text.matchAll(/AGFzbQ[A-Za-z0-9+/]+=*/g)].map((m) => m[0]);
    for (const base64 of modules) {
      const decoded = Buffer.from(base64, 'base64');
      totals.wasmBase64.bytes += base64.length;
      totals.wasmBase64.gzip += gzip(Buffer.from(base64));
      totals.wasm.bytes += decoded.length;
      totals.wasm.gzip += gzip(decoded);
      totals.wasm.modules += 1;
      text = text.replace(base64, '');
    }
    const js = Buffer.from(text);
    totals.js.bytes += js.length;
    totals.js.gzip += gzip(js);
    totals.js.files += 1;
    perFile.push({ file: name, bytes: bytes.length, wasmModules: modules.length });
  } else if (name.endsWith('.wasm')) {
    totals.wasm.bytes += bytes.length;
    totals.wasm.gzip += gzip(bytes);
    totals.wasm.modules += 1;
  } else if (name.endsWith('.css')) {
    totals.css.bytes += bytes.length;
    totals.css.gzip += gzip(bytes);
  } else if (name.startsWith('models/')) {
    totals.models.bytes += bytes.length;
  }
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ totals, files: perFile }, null, 2));
} else {
  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const row = (part, raw, gzipped) => console.log(`| ${part} | ${kb(raw)} | ${gzipped === null ? '' : kb(gzipped)} |`);
  console.log('| part | raw | gzip |');
  console.log('| --- | ---: | ---: |');
  row(`JavaScript (${totals.js.files} files, without the embedded WebAssembly)`, totals.js.bytes, totals.js.gzip);
  row(`WebAssembly (${totals.wasm.modules} modules, decoded)`, totals.wasm.bytes, totals.wasm.gzip);
  row('WebAssembly as shipped (base64 inside the JavaScript)', totals.wasmBase64.bytes, totals.wasmBase64.gzip);
  row('CSS', totals.css.bytes, totals.css.gzip);
  row('built-in models (two folders)', totals.models.bytes, null);
  for (const f of perFile)
    console.log(`  ${f.file}: ${kb(f.bytes)}${f.wasmModules ? ` (${f.wasmModules} WebAssembly modules inside)` : ''}`);
}
