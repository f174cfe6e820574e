/**
 * Text documents and the fixed train/validation split. The split depends only on the documents (their
 * names and text), never on a seed or the machine, so validation figures compare across runs:
 *   - ten documents or more: every tenth, in order of name, is validation (spread over the whole set);
 *   - fewer (one file, say): the last tenth of each document's text, cut at a line break, is validation.
 */
import { DataError } from '../errors.js';

export interface TextDocument {
  /** Where it came from (a file's path relative to the data root), for messages and the split. */
  readonly name: string;
  readonly text: string;
}

export interface TextSplit {
  readonly train: readonly TextDocument[];
  readonly validation: readonly TextDocument[];
}

/** The validation share of the split. */
export const VALIDATION_FRACTION = 0.1;

export function splitDocuments(documents: readonly TextDocument[]): TextSplit {
  const sorted = [...documents].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (sorted.length >= 10) {
    const every = Math.round(1 / VALIDATION_FRACTION);
    return {
      train: sorted.filter((_, i) => i % every !== every - 1),
      validation: sorted.filter((_, i) => i % every === every - 1),
    };
  }
  const train: TextDocument[] = [];
  const validation: TextDocument[] = [];
  for (const doc of sorted) {
    const cut = splitPoint(doc.text);
    train.push({ name: doc.name, text: doc.text.slice(0, cut) });
    validation.push({ name: `${doc.name} (last tenth)`, text: doc.text.slice(cut) });
  }
  return { train, validation };
}

/** Where the last tenth of a text starts: at the line break nearest to 90 %, else exactly there. */
function splitPoint(text: string): number {
  const target = Math.floor(text.length * (1 - VALIDATION_FRACTION));
  const before = text.lastIndexOf('\n', target);
  const after = text.indexOf('\n', target);
  const candidates = [before, after].filter((i) => i > 0 && i < text.length - 1).map((i) => i + 1);
  if (candidates.length === 0) return target;
  return candidates.reduce((best, i) => (Math.abs(i - target) < Math.abs(best - target) ? i : best));
}

/**
 * Decodes a file's bytes as UTF-8 text, refusing what is not text: a NUL byte (binary formats have
 * them, text never does) or bytes that are not valid UTF-8. `name` is for the message.
 */
export function decodeText(bytes: Uint8Array, name: string): string {
  if (bytes.length === 0) throw new DataError(name, 'the file is empty; give a file with text in it');
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new DataError(
      name,
      `not a text file (a NUL byte at offset ${nul}, as binary files have); give UTF-8 text, or a folder of text files`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new DataError(name, 'not UTF-8 text (invalid byte sequence); convert it to UTF-8 first', { cause: error });
  }
}
