/**
 * The gradient of a whole model's loss with respect to every parameter, by name, through core's tape
 * (valueAndGrads around DiffTransformer.loss) on the backend, against the float64 reference's explicit
 * backpropagation (reference/model-gradients.ts, itself checked by finite differences of the official
 * formulation). DIFF V1 (MHA and GQA, tied and untied, both rotary layouts, subln with and without
 * weight, and the ablations: no subln with a fixed λinit, a scalar λ), DIFF V2 and the baseline; λ's
 * four vectors, the scalar λ, λ_proj and tied embeddings included.
 */
import { DiffTransformer, valueAndGrads } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import { refTensor } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { FIXTURES, type ModelFixture, fixtureModel } from './fixtures.js';
import type { Check } from './harness.js';
import { defineCase } from './harness.js';
import { integers } from './inputs.js';

const SPECS: ReadonlyArray<{ fixture: ModelFixture; batch: number; tokens: number }> = [
  { fixture: FIXTURES.diffMhaTied, batch: 2, tokens: 7 },
  { fixture: FIXTURES.diffGqa2Half, batch: 1, tokens: 9 },
  { fixture: FIXTURES.diffGqa4NoSublnWeight, batch: 1, tokens: 6 },
  { fixture: FIXTURES.diffNoSublnLambdaInit08, batch: 1, tokens: 7 },
  { fixture: FIXTURES.diffScalarLambdaGqa2, batch: 2, tokens: 5 },
  { fixture: FIXTURES.v2Gqa2Half, batch: 2, tokens: 5 },
  { fixture: FIXTURES.standardMhaTied, batch: 1, tokens: 9 },
  { fixture: FIXTURES.standardGqa4Half, batch: 2, tokens: 5 },
];

function gradientCase(spec: (typeof SPECS)[number]): ConformanceCase {
  return defineCase(
    `gradients/${spec.fixture.label} B${spec.batch} T${spec.tokens}`,
    'gradients',
    async (ws, random) => {
      const { config, parameters } = fixtureModel(spec.fixture);
      const ids = Array.from({ length: spec.batch }, () => integers(random, spec.tokens, config.vocabSize));
      // Next-token targets, with one padded position that must count for nothing.
      const targets = ids.map((row, b) =>
        row.map((_, t) => (b === 0 && t === 0 ? -100 : (row[t] * 7 + 3) % config.vocabSize)),
      );
      const model = DiffTransformer.fromParameters(config, parameters, { backend: ws.backend });
      try {
        const { value, grads } = valueAndGrads(() => model.loss(ids, targets), model.parameters, {
          gradients: ws.gradients,
        });
        ws.own(value);
        for (const g of grads.values()) ws.own(g);
        const expected = reference.modelLossGradients(config, parameters, ids, targets);
        const checks: Check[] = [
          { label: 'loss', actual: await ws.read(value), expected: refTensor([expected.loss], [1]) },
        ];
        for (const [name, g] of grads) {
          checks.push({ label: `d ${name}`, actual: await ws.read(g), expected: expected.gradients.get(name)! });
        }
        return checks;
      } finally {
        model.dispose();
      }
    },
    { float32Only: true },
  );
}

export function gradientCases(): ConformanceCase[] {
  return SPECS.map(gradientCase);
}
