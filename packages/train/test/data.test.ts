import { ByteTokenizer } from '@diff-transformer/core';
import {
  DataError,
  decodeText,
  evenlySpaced,
  PackedSequences,
  SequenceOrder,
  splitDocuments,
  stripBrownTags,
  tokenizeSplit,
} from '@diff-transformer/train';
import { describe, expect, it } from 'vitest';
import { smallDocuments } from './helpers.js';

describe('the fixed train/validation split', () => {
  it('ten documents or more: every tenth by name is validation, whatever order they came in', () => {
    const docs = smallDocuments();
    const split = splitDocuments([...docs].reverse());
    expect(split.validation.map((d) => d.name)).toEqual(['doc09.txt']);
    expect(split.train.map((d) => d.name)).toEqual(docs.map((d) => d.name).filter((n) => n !== 'doc09.txt'));
  });

  it('fewer: the last tenth of each text, cut at a line break', () => {
    const text = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n');
    const { train, validation } = splitDocuments([{ name: 'one.txt', text }]);
    expect(train[0].text + validation[0].text).toBe(text);
    expect(validation[0].text.startsWith('line ')).toBe(true);
    expect(validation[0].text.length / text.length).toBeCloseTo(0.1, 1);
  });
});

describe('text files', () => {
  it('refuses an empty file, a binary one (a NUL byte) and bytes that are not UTF-8', () => {
    expect(() => decodeText(new Uint8Array(0), 'e.txt')).toThrow(DataError);
    expect(() => decodeText(new Uint8Array(0), 'e.txt')).toThrow(/e\.txt: the file is empty/);
    expect(() => decodeText(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0]), 'x.png')).toThrow(
      /x\.png: not a text file \(a NUL byte at offset 4/,
    );
    expect(() => decodeText(Uint8Array.from([0x61, 0xff, 0x62]), 'l.txt')).toThrow(/not UTF-8 text/);
    expect(decodeText(new TextEncoder().encode('héllo'), 'ok.txt')).toBe('héllo');
  });
});

describe('the Brown corpus', () => {
  it('strips word/tag tags and joins the tokens back as written English', () => {
    const tagged =
      "\n\n\tThe/at jury/nn said/vbd ``/`` it/pps deserves/vbz praise/nn ''/'' ,/, and/cc Atlanta's/np$ " +
      'mayor/nn (/( Mr./np Allen/np )/) agreed/vbd ./.\n\n\n\tNext/ap sentence/nn ?/.\n';
    expect(stripBrownTags(tagged)).toBe(
      'The jury said "it deserves praise", and Atlanta\'s mayor (Mr. Allen) agreed.\nNext sentence?\n',
    );
  });
});

describe('tokens, packing and order', () => {
  it('bytes are the ids; the fingerprint changes with the text', () => {
    const docs = smallDocuments();
    const data = tokenizeSplit(splitDocuments(docs));
    const expected = new TextEncoder().encode(docs[0].text);
    expect(Array.from(data.train.tokens.subarray(0, 20))).toEqual(Array.from(expected.subarray(0, 20)));
    expect(data.train.bytes).toBe(data.train.tokens.length);
    expect(data.vocabSize).toBe(256);
    const other = tokenizeSplit(splitDocuments([{ ...docs[0], text: `${docs[0].text}!` }, ...docs.slice(1)]));
    expect(other.fingerprint).not.toBe(data.fingerprint);
    expect(tokenizeSplit(splitDocuments(docs), new ByteTokenizer()).fingerprint).toBe(data.fingerprint);
  });

  it('packs sequences of T inputs whose targets are the next tokens, every token a target once', () => {
    const tokens = Int32Array.from({ length: 23 }, (_, i) => i);
    const packed = new PackedSequences(tokens, 5);
    expect(packed.count).toBe(4);
    expect(packed.sequence(0)).toEqual({ ids: [0, 1, 2, 3, 4], targets: [1, 2, 3, 4, 5] });
    expect(packed.sequence(3)).toEqual({ ids: [15, 16, 17, 18, 19], targets: [16, 17, 18, 19, 20] });
  });

  it('the order is a permutation per epoch, a function of the seed and the position only', () => {
    const a = new SequenceOrder(10, 7);
    const epoch0 = Array.from({ length: 10 }, (_, k) => a.at(k));
    const epoch1 = Array.from({ length: 10 }, (_, k) => a.at(10 + k));
    expect([...epoch0].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...epoch1].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(epoch1).not.toEqual(epoch0);
    // Asked out of order (as a resumed run does), it gives the same sequences.
    const b = new SequenceOrder(10, 7);
    expect(b.at(13)).toBe(epoch1[3]);
    expect(b.at(2)).toBe(epoch0[2]);
    expect(new SequenceOrder(10, 8).at(0) === epoch0[0] && new SequenceOrder(10, 8).at(1) === epoch0[1]).toBe(false);
  });

  it('a partial evaluation takes sequences spread over the whole split', () => {
    expect(evenlySpaced(10, 4)).toEqual([0, 2, 5, 7]);
    expect(evenlySpaced(3, 8)).toEqual([0, 1, 2]);
  });
});
