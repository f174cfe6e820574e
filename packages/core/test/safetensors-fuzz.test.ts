/**
 * Fuzzing the safetensors parser: thousands of seeded mutations of valid files (bit flips, byte
 * overwrites, truncation, insertions, a tampered header length, edits inside the JSON). Whatever the
 * bytes, opening the file and reading every tensor either succeeds or throws a CheckpointError — never
 * another exception, never a read outside the file, never an allocation larger than the file allows,
 * and never a hang (the whole test runs in a few seconds).
 */
import { describe, expect, it } from 'vitest';
import { CheckpointError, createRandom, openSafetensors, serializeSafetensors, type ByteSource } from '../src/index.js';

const ITERATIONS = 10_000;

function seeds(): Uint8Array[] {
  return [
    serializeSafetensors(
      [
        ['embed_tokens.weight', { shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) }],
        ['lambda', { shape: [2], data: Float64Array.of(0.5, -1) }],
        ['half', { shape: [3], data: Float32Array.of(1, 2, 3), dtype: 'F16' }],
        ['brain', { shape: [1, 2], data: Float32Array.of(-1, 4), dtype: 'BF16' }],
        ['ids', { shape: [2], data: BigInt64Array.of(3n, -9n) }],
        ['mask', { shape: [5], data: Uint8Array.of(1, 0, 1, 1, 0) }],
        ['count', { shape: [], data: Int32Array.of(42) }],
      ],
      { format: 'pt', source: '"x"' },
    ),
    serializeSafetensors([['x', { shape: [2, 2, 2], data: new Float32Array(8).fill(0.25) }]]),
    serializeSafetensors([]),
  ];
}

/** A source that fails loudly (with a plain Error) if the parser ever reads outside the file. */
function strictSource(bytes: Uint8Array): ByteSource {
  return {
    name: 'fuzz.safetensors',
    size: bytes.length,
    async read(offset, length) {
      if (
        !(
          Number.isSafeInteger(offset) &&
          Number.isSafeInteger(length) &&
          offset >= 0 &&
          length >= 0 &&
          offset + length <= bytes.length
        )
      ) {
        throw new Error(`parser read outside the file: ${length} bytes at ${offset} of ${bytes.length}`);
      }
      return bytes.subarray(offset, offset + length);
    },
  };
}

function mutate(original: Uint8Array, random: ReturnType<typeof createRandom>): Uint8Array {
  const pick = (n: number) => Math.floor(random.next() * n);
  let bytes: Uint8Array = original.slice();
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const rounds = 1 + pick(3);
  for (let r = 0; r < rounds; r++) {
    switch (pick(8)) {
      case 0: // flip one bit anywhere
        if (bytes.length) bytes[pick(bytes.length)] ^= 1 << pick(8);
        break;
      case 1: // overwrite a byte inside the header JSON (digits and structure are likely targets)
        if (headerLength)
          bytes[8 + pick(Math.min(headerLength, bytes.length - 8))] = '0123456789[]{}":,-eE.'.charCodeAt(pick(21));
        break;
      case 2: // truncate
        bytes = bytes.slice(0, pick(bytes.length + 1));
        break;
      case 3: // insert random bytes
        {
          const at = pick(bytes.length + 1);
          const extra = Uint8Array.from({ length: 1 + pick(16) }, () => pick(256));
          bytes = Uint8Array.from([...bytes.slice(0, at), ...extra, ...bytes.slice(at)]);
        }
        break;
      case 4: // tamper with the declared header length
        if (bytes.length >= 8) {
          const view = new DataView(bytes.buffer, bytes.byteOffset);
          const choices = [
            0n,
            1n,
            BigInt(headerLength + pick(64)) - 32n,
            2n ** 63n,
            2n ** 64n - 1n,
            BigInt(bytes.length),
          ];
          const value = choices[pick(choices.length)];
          view.setBigUint64(0, value < 0n ? 0n : value, true);
        }
        break;
      case 5: // replace a number in the JSON by a huge, negative or fractional one
        {
          const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
          const numbers = [...text.matchAll(/\d+/g)];
          if (numbers.length) {
            const m = numbers[pick(numbers.length)];
            const replacement = ['99999999999999999999', '-1', '1.5', '4294967296', '0', String(2 ** 53)][pick(6)];
            const edited = text.slice(0, m.index) + replacement + text.slice(m.index! + m[0].length);
            bytes = rebuild(bytes, edited, headerLength);
          }
        }
        break;
      case 6: // swap the dtype of an entry
        {
          const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
          const edited = text.replace(
            /"(F64|F32|F16|BF16|I64|I32|U8)"/,
            `"${['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL', 'f32', ''][pick(10)]}"`,
          );
          bytes = rebuild(bytes, edited, headerLength);
        }
        break;
      case 7: // zero a run of bytes
        {
          const at = pick(bytes.length + 1);
          bytes.fill(0, at, at + pick(32));
        }
        break;
    }
  }
  return bytes;
}

/** Replaces the header JSON, fixing the length prefix so the mutation reaches the parser's later checks. */
function rebuild(bytes: Uint8Array, json: string, oldLength: number): Uint8Array {
  const encoded = new TextEncoder().encode(json);
  const data = bytes.slice(8 + oldLength);
  const out = new Uint8Array(8 + encoded.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(encoded.length), true);
  out.set(encoded, 8);
  out.set(data, 8 + encoded.length);
  return out;
}

describe('safetensors parser under fuzzing', () => {
  it(`only ever throws CheckpointError on ${ITERATIONS} mutated files`, async () => {
    const random = createRandom(20250101);
    const originals = seeds();
    const tally = { ok: 0, rejected: 0 };
    const errorKinds = new Set<string>();
    const started = performance.now();
    for (let i = 0; i < ITERATIONS; i++) {
      const bytes = mutate(originals[i % originals.length], random);
      try {
        const file = await openSafetensors(strictSource(bytes));
        for (const [name, info] of file.tensors) {
          const values = await file.read(name);
          // Nothing larger than the file can come out: every element was backed by bytes in it.
          expect(values.length).toBe(info.size);
          expect(info.end).toBeLessThanOrEqual(bytes.length);
        }
        tally.ok++;
      } catch (error) {
        if (!(error instanceof CheckpointError)) {
          throw new Error(
            `iteration ${i}: ${error instanceof Error ? error.stack : String(error)}\n` +
              `file: ${Buffer.from(bytes).toString('base64')}`,
          );
        }
        tally.rejected++;
        errorKinds.add(error.code);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    expect(tally.ok + tally.rejected).toBe(ITERATIONS);
    // The mutations reach every validation, not just the first one.
    expect(tally.rejected).toBeGreaterThan(ITERATIONS / 4);
    expect(tally.ok).toBeGreaterThan(0);
    for (const code of [
      'SAFETENSORS_HEADER_LENGTH',
      'SAFETENSORS_HEADER_JSON',
      'SAFETENSORS_HEADER_ENTRY',
      'SAFETENSORS_UNKNOWN_DTYPE',
      'SAFETENSORS_OFFSET_RANGE',
      'SAFETENSORS_BYTE_SIZE',
    ]) {
      expect(errorKinds, code).toContain(code);
    }
    expect(seconds).toBeLessThan(20);
  }, 60_000);
});
