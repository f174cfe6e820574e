/** A model folder's tokenizer on disk. */
import { join } from 'node:path';
import { CheckpointError, CheckpointIOError } from '../io/errors.js';
import { HuggingFaceTokenizer, type Tokenizer } from '../io/tokenizer.js';
import { directorySource } from './file-source.js';

/**
 * The folder's tokenizer: tokenizer.json (with tokenizer_config.json when present) through
 * @huggingface/tokenizers, or null when the folder has none.
 */
export async function loadTokenizer(
  dir: string,
  options: { addSpecialTokens?: boolean } = {},
): Promise<Tokenizer | null> {
  const folder = directorySource(dir);
  if (!(await folder.exists('tokenizer.json'))) return null;
  const parse = async (file: string) => {
    try {
      return JSON.parse(await folder.readText(file)) as unknown;
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      throw new CheckpointIOError(
        join(dir, file),
        `not valid JSON (${error instanceof Error ? error.message : String(error)})`,
      );
    }
  };
  const json = await parse('tokenizer.json');
  const config = (await folder.exists('tokenizer_config.json')) ? await parse('tokenizer_config.json') : {};
  return new HuggingFaceTokenizer(json, config, { ...options, file: join(dir, 'tokenizer.json') });
}
