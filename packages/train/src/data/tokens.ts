/**
 * Text to token ids: each document encoded on its own (so a Hugging Face tokenizer adds its BOS/EOS per
 * document, as pre-training pipelines do) and the ids concatenated into one stream per split.
 */
import { ByteTokenizer, type Tokenizer } from '@diff-transformer/core';
import { DataError } from '../errors.js';
import type { TextDocument, TextSplit } from './text.js';

/** The token stream of one split and the amount of text it encodes. */
export interface TokenStream {
  readonly tokens: Int32Array;
  /** UTF-8 bytes of the text the tokens encode (for bits per byte). */
  readonly bytes: number;
  readonly documents: number;
}

export interface TokenizedData {
  readonly train: TokenStream;
  readonly validation: TokenStream;
  /** Ids the tokenizer can produce: the model's vocabulary must hold them. */
  readonly vocabSize: number;
  /** FNV-1a of both streams, hex: a resumed run checks it sees the same data. */
  readonly fingerprint: string;
}

export function tokenizeSplit(split: TextSplit, tokenizer: Tokenizer = new ByteTokenizer()): TokenizedData {
  const train = tokenizeDocuments(split.train, tokenizer);
  const validation = tokenizeDocuments(split.validation, tokenizer);
  let hash = 0x811c9dc5;
  for (const stream of [train.tokens, validation.tokens]) hash = fnv1a(stream, hash);
  return {
    train,
    validation,
    vocabSize: tokenizer.vocabSize,
    fingerprint: `${hash.toString(16).padStart(8, '0')}-${train.tokens.length}-${validation.tokens.length}`,
  };
}

function tokenizeDocuments(documents: readonly TextDocument[], tokenizer: Tokenizer): TokenStream {
  const encoder = new TextEncoder();
  const pieces: ArrayLike<number>[] = [];
  let length = 0;
  let bytes = 0;
  for (const doc of documents) {
    const encoded = encoder.encode(doc.text);
    bytes += encoded.length;
    const ids = tokenizer instanceof ByteTokenizer ? encoded : tokenizer.encode(doc.text);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) {
        throw new DataError(
          doc.name,
          `the tokenizer gave id ${id}, outside its vocabulary [0, ${tokenizer.vocabSize})`,
        );
      }
    }
    pieces.push(ids);
    length += ids.length;
  }
  const tokens = new Int32Array(length);
  let offset = 0;
  for (const ids of pieces) {
    tokens.set(ids, offset);
    offset += ids.length;
  }
  return { tokens, bytes, documents: documents.length };
}

function fnv1a(values: Int32Array, seed: number): number {
  let hash = seed;
  for (let i = 0; i < values.length; i++) {
    let v = values[i];
    for (let b = 0; b < 4; b++) {
      hash ^= v & 0xff;
      hash = Math.imul(hash, 0x01000193) >>> 0;
      v >>>= 8;
    }
  }
  return hash;
}
