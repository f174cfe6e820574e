import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OnnxFile } from '@diff-transformer/onnx';

/** Writes an export's files into `dir` (what difftx export does, without the atomic swap). */
export function writeExport(dir: string, files: readonly OnnxFile[]): void {
  mkdirSync(dir, { recursive: true });
  for (const file of files) {
    writeFileSync(join(dir, file.name), Buffer.concat(file.chunks.map((c) => (typeof c === 'function' ? c() : c))));
  }
}
