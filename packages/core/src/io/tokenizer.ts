/**
 * Tokenizers. Token ids are the model's interface; text goes through a Tokenizer. Two are provided:
 *   - ByteTokenizer: UTF-8 bytes as ids 0–255 (vocabulary 256), built in, for byte-level models and tests;
 *   - HuggingFaceTokenizer: a Hugging Face tokenizer.json (BPE, WordPiece, Unigram, …) through the
 *     maintained @huggingface/tokenizers library (pure JavaScript, works offline and in browsers).
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ArgumentError } from '../errors.js';
import { CheckpointConfigError } from './errors.js';

export interface Tokenizer {
  /** Number of ids the tokenizer can produce (the model's vocabSize must be at least this). */
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

/** UTF-8 bytes as token ids; decoding replaces incomplete sequences with U+FFFD. */
export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 256;
  encode(text: string): number[] {
    return Array.from(new TextEncoder().encode(text));
  }
  decode(ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id > 255)
        throw new ArgumentError('byte token id', 'an integer in [0, 255]', id);
    }
    return new TextDecoder().decode(Uint8Array.from(ids));
  }
}

/** A Hugging Face tokenizer.json (and optionally tokenizer_config.json). */
export class HuggingFaceTokenizer implements Tokenizer {
  readonly #tokenizer: HfTokenizer;
  readonly vocabSize: number;
  readonly #addSpecialTokens: boolean;

  /**
   * @param tokenizerJson the parsed tokenizer.json
   * @param tokenizerConfig the parsed tokenizer_config.json, or {} when there is none
   * @param options.addSpecialTokens add BOS/EOS etc. as the post-processor says (default true, as transformers does)
   */
  constructor(
    tokenizerJson: unknown,
    tokenizerConfig: unknown = {},
    options: { addSpecialTokens?: boolean; file?: string } = {},
  ) {
    const file = options.file ?? 'tokenizer.json';
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || !('model' in tokenizerJson)) {
      throw new CheckpointConfigError(file, 'model', 'not a Hugging Face tokenizer.json (it has no "model")');
    }
    try {
      this.#tokenizer = new HfTokenizer(tokenizerJson, tokenizerConfig ?? {});
    } catch (error) {
      throw new CheckpointConfigError(
        file,
        null,
        `the tokenizer could not be built: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    let size = 0;
    const vocab = this.#tokenizer.get_vocab?.() as Map<string, number> | Record<string, number> | undefined;
    const ids = vocab instanceof Map ? vocab.values() : Object.values(vocab ?? {});
    for (const id of ids) size = Math.max(size, id + 1);
    for (const id of this.#tokenizer.get_added_tokens_decoder().keys()) size = Math.max(size, id + 1);
    this.vocabSize = size;
    this.#addSpecialTokens = options.addSpecialTokens ?? true;
  }

  encode(text: string): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: this.#addSpecialTokens }).ids;
  }

  decode(ids: readonly number[]): string {
    return this.#tokenizer.decode([...ids], { skip_special_tokens: true });
  }

  /** The id of a token string (e.g. an EOS token), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.#tokenizer.token_to_id(token);
  }
}
