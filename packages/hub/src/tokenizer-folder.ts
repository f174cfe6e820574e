/** A model folder's tokenizer, from any FolderSource (a snapshot in the Cache API, files a person chose). */
import { CheckpointError, CheckpointIOError, type FolderSource, HuggingFaceTokenizer } from '@diff-transformer/core';

/** tokenizer.json (with tokenizer_config.json when present) through @huggingface/tokenizers, or null. */
export async function tokenizerFromFolder(folder: FolderSource): Promise<HuggingFaceTokenizer | null> {
  if (!(await folder.exists('tokenizer.json'))) return null;
  const parse = async (file: string) => {
    try {
      return JSON.parse(await folder.readText(file)) as unknown;
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      throw new CheckpointIOError(
        `${folder.name}/${file}`,
        `not valid JSON (${error instanceof Error ? error.message : String(error)})`,
      );
    }
  };
  const json = await parse('tokenizer.json');
  const config = (await folder.exists('tokenizer_config.json')) ? await parse('tokenizer_config.json') : {};
  return new HuggingFaceTokenizer(json, config, { file: `${folder.name}/tokenizer.json` });
}
