/**
 * Where an experiment's files go: OUT/<name>.json (its results), OUT/<name>.md (its section of the
 * report, generated from that JSON) and OUT/figures/*.svg; REPORT.md links figures relatively.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Writes an SVG figure and returns its path relative to OUT, as the report links it. */
export async function writeFigure(out: string, name: string, svg: string): Promise<string> {
  await mkdir(join(out, 'figures'), { recursive: true });
  await writeFile(join(out, 'figures', name), svg);
  return `figures/${name}`;
}

export async function writeJson(out: string, name: string, value: unknown): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeFile(join(out, name), `${JSON.stringify(value, finiteOrNull, 1)}\n`);
}

export async function writeText(out: string, name: string, text: string): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeFile(join(out, name), text);
}

/** JSON has no NaN or infinity: they are written as null (the report prints n/a). */
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
