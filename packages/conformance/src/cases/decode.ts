/**
 * KV-cache decoding: a prefill through the cache, then further chunks or single tokens, each step's
 * logits compared with the reference model's full forward over the whole sequence at the same
 * positions. The cache is larger than the sequence, so keyLength < cache rows at every step.
 */
import { DiffTransformer } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { RefTensor } from '@diff-transformer/reference';
import { refZeros } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import type { ModelFixture } from './fixtures.js';
import { FIXTURES, fixtureModel } from './fixtures.js';
import type { Check } from './harness.js';
import { defineCase } from './harness.js';
import { integers } from './inputs.js';

interface DecodeSpec {
  readonly fixture: ModelFixture;
  readonly batch: number;
  /** Tokens of each forward through the cache: the prefill first, then chunks or single tokens. */
  readonly steps: readonly number[];
  /** Prefill with lastTokenOnly, as generate() does. */
  readonly lastTokenOnly?: boolean;
}

const SPECS: readonly DecodeSpec[] = [
  { fixture: FIXTURES.diffGqa2Half, batch: 1, steps: [5, 1, 1, 1, 1, 1, 1] },
  { fixture: FIXTURES.v2Gqa2Half, batch: 2, steps: [4, 1, 1, 1, 1, 1] },
  { fixture: FIXTURES.standardGqa4Half, batch: 1, steps: [3, 4, 1, 1, 1, 1] },
  { fixture: FIXTURES.diffMhaTied, batch: 1, steps: [1, 1, 1, 1, 1, 1, 1, 1, 1], lastTokenOnly: true },
  { fixture: FIXTURES.diffGqa4NoSublnWeight, batch: 1, steps: [6, 2, 1, 1, 1], lastTokenOnly: true },
  { fixture: FIXTURES.diffNoSublnLambdaInit08, batch: 2, steps: [3, 1, 1, 2] },
];

/** Reference logits [B, T, V] restricted to positions [from, from + count). */
function positions(logits: RefTensor, from: number, count: number): RefTensor {
  const [batch, tokens, vocab] = logits.shape;
  const out = refZeros([batch, count, vocab]);
  for (let b = 0; b < batch; b++) {
    out.data.set(
      logits.data.subarray((b * tokens + from) * vocab, (b * tokens + from + count) * vocab),
      b * count * vocab,
    );
  }
  return out;
}

function decodeCase(spec: DecodeSpec): ConformanceCase {
  const total = spec.steps.reduce((a, b) => a + b);
  const name =
    `decode/${spec.fixture.label} B${spec.batch} steps ${spec.steps.join('+')}` +
    `${spec.lastTokenOnly ? ' (prefill lastTokenOnly)' : ''}`;
  return defineCase(
    name,
    'decode',
    async (ws, random) => {
      const { config, parameters } = fixtureModel(spec.fixture);
      const ids = Array.from({ length: spec.batch }, () => integers(random, total, config.vocabSize));
      const expected = reference.modelLogits(config, parameters, ids);
      const model = DiffTransformer.fromParameters(config, parameters, { backend: ws.backend });
      const cache = model.createCache(spec.batch, total + 3);
      const checks: Check[] = [];
      try {
        let position = 0;
        for (const [step, count] of spec.steps.entries()) {
          const lastOnly = step === 0 && spec.lastTokenOnly === true;
          const logits = ws.own(
            model.forward(
              ids.map((row) => row.slice(position, position + count)),
              { cache, lastTokenOnly: lastOnly },
            ),
          );
          const from = lastOnly ? position + count - 1 : position;
          const label = `step ${step}: positions [${from}, ${position + count})`;
          checks.push({
            label,
            actual: await ws.read(logits),
            expected: positions(expected, from, position + count - from),
          });
          logits.dispose();
          position += count;
        }
        if (cache.length !== total) ws.fail(`the cache holds ${cache.length} tokens after ${total} were fed`);
        return checks;
      } finally {
        cache.dispose();
        model.dispose();
      }
    },
    { float32Only: true },
  );
}

export function decodeCases(): ConformanceCase[] {
  return SPECS.map(decodeCase);
}
