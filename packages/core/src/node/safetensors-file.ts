/** safetensors files on disk: opened through a file source, written atomically. */
import type { SafetensorsEntry, SafetensorsFile, SafetensorsLayout } from '../io/safetensors.js';
import { layoutSafetensors, openSafetensors } from '../io/safetensors.js';
import { writeFileAtomic } from './atomic-write.js';
import { fileSource } from './file-source.js';

/** Opens a safetensors file and validates its header; read tensors with .read(name); close() when done. */
export async function readSafetensorsFile(path: string): Promise<SafetensorsFile> {
  return openSafetensors(await fileSource(path));
}

/** The pieces of a safetensors layout, in file order, for writeFileAtomic. */
export function layoutChunks(layout: SafetensorsLayout): Array<Uint8Array | (() => Uint8Array)> {
  return [layout.header, ...layout.tensors.map((t) => t.bytes)];
}

/** Writes a safetensors file atomically (see writeFileAtomic). */
export async function writeSafetensorsFile(
  path: string,
  entries: Iterable<readonly [string, SafetensorsEntry]>,
  metadata: Readonly<Record<string, string>> = {},
): Promise<void> {
  await writeFileAtomic(path, layoutChunks(layoutSafetensors(entries, metadata, path)));
}
