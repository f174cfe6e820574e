import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ByteTokenizer, CheckpointConfigError, HuggingFaceTokenizer } from '../src/index.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../fixtures/tokenizer/${name}`, import.meta.url), 'utf8'));

describe('tokenizers', () => {
  it('byte tokenizer: UTF-8 bytes as ids', () => {
    const t = new ByteTokenizer();
    expect(t.encode('hé!')).toEqual([104, 195, 169, 33]);
    expect(t.decode([104, 195, 169, 33])).toBe('hé!');
    expect(t.vocabSize).toBe(256);
    expect(() => t.decode([300])).toThrow(/byte token id/);
  });

  it('Hugging Face tokenizer.json through @huggingface/tokenizers, offline from a local file', () => {
    const t = new HuggingFaceTokenizer(fixture('tokenizer.json'), fixture('tokenizer_config.json'));
    expect(t.vocabSize).toBe(268);
    const ids = t.encode('hello world, hi ünï!');
    expect(ids.slice(0, 2)).toEqual([259, 264]); // merges: "hello", "Ġworld"
    expect(t.decode(ids)).toBe('hello world, hi ünï!');
    expect(t.tokenToId('<|endoftext|>')).toBe(267);
    expect(t.encode('hello<|endoftext|>')).toEqual([259, 267]);
    expect(t.decode([259, 267])).toBe('hello'); // special tokens are skipped in text
    expect(() => new HuggingFaceTokenizer({ not: 'a tokenizer' })).toThrow(CheckpointConfigError);
  });
});
