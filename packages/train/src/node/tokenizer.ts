/**
 * The tokenizer of a run: the built-in byte tokenizer by default, or a Hugging Face tokenizer.json
 * (a file, or a folder holding one, with its tokenizer_config.json when there is one beside it). A
 * checkpoint keeps a copy, so generate, eval and export use the same one.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ByteTokenizer, HuggingFaceTokenizer, type Tokenizer } from '@diff-transformer/core';
import type { FolderFile } from '../checkpoint.js';
import { DataError } from '../errors.js';

export interface RunTokenizer {
  readonly tokenizer: Tokenizer;
  /** "bytes", or the tokenizer.json's path. */
  readonly name: string;
  /** The files a checkpoint keeps (none for bytes). */
  readonly files: readonly FolderFile[];
}

export function byteTokenizer(): RunTokenizer {
  return { tokenizer: new ByteTokenizer(), name: 'bytes', files: [] };
}

/** A tokenizer.json file, or a folder with one. */
export async function loadTokenizerFile(path: string): Promise<RunTokenizer> {
  let file = path;
  try {
    if ((await stat(path)).isDirectory()) file = join(path, 'tokenizer.json');
  } catch (error) {
    throw new DataError(path, 'no such tokenizer file or folder; give a tokenizer.json or a folder holding one', {
      cause: error,
    });
  }
  const json = await readText(file);
  if (json === undefined) throw new DataError(file, 'no tokenizer.json here');
  const configFile = join(dirname(file), 'tokenizer_config.json');
  const config = basename(file) === 'tokenizer.json' ? await readText(configFile) : undefined;
  let tokenizer: HuggingFaceTokenizer;
  try {
    tokenizer = new HuggingFaceTokenizer(JSON.parse(json), config === undefined ? {} : JSON.parse(config), { file });
  } catch (error) {
    throw new DataError(file, `not a usable Hugging Face tokenizer (${(error as Error).message})`, { cause: error });
  }
  const encode = (s: string) => [new TextEncoder().encode(s)];
  const files: FolderFile[] = [{ name: 'tokenizer.json', chunks: encode(json) }];
  if (config !== undefined) files.push({ name: 'tokenizer_config.json', chunks: encode(config) });
  return { tokenizer, name: file, files };
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}
