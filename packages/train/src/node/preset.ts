/** `--size FILE`: a preset from a JSON file (see parsePreset). */
import { readFile } from 'node:fs/promises';
import { parsePreset, PRESETS, type Preset } from '../presets.js';
import { TrainingConfigError } from '../errors.js';

/** 'tiny', 'small', or the path of a JSON preset. */
export async function resolvePreset(size: string): Promise<Preset> {
  if (size in PRESETS) return PRESETS[size as keyof typeof PRESETS];
  let text: string;
  try {
    text = await readFile(size, 'utf8');
  } catch {
    throw new TrainingConfigError('size', `${Object.keys(PRESETS).join(', ')} or a JSON preset file`, size);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TrainingConfigError(size, 'valid JSON', (error as Error).message);
  }
  return parsePreset(json, size);
}
