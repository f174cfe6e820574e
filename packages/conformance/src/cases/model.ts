/**
 * Whole-model logits: core's DiffTransformer on the backend against the reference model written after
 * the official code. This is where the graph's wiring is checked: λ and λinit per layer, the subln
 * weight and (1 − λinit), the half-head split, GQA grouping, rotary layout and the LM head.
 */
import type { HostTensor, DiffTransformer as Model } from '@diff-transformer/core';
import { DiffTransformer } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import { refTensor } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import type { ModelFixture } from './fixtures.js';
import { FIXTURES, fixtureModel } from './fixtures.js';
import type { Check } from './harness.js';
import { defineCase } from './harness.js';
import { integers } from './inputs.js';

interface ModelSpec {
  readonly fixture: ModelFixture;
  readonly batch: number;
  readonly tokens: number;
}

const SPECS: readonly ModelSpec[] = [
  { fixture: FIXTURES.diffMhaTied, batch: 1, tokens: 9 },
  { fixture: FIXTURES.diffMhaTied, batch: 1, tokens: 1 },
  { fixture: FIXTURES.diffGqa2Half, batch: 2, tokens: 7 },
  { fixture: FIXTURES.diffGqa4NoSublnWeight, batch: 1, tokens: 11 },
  { fixture: FIXTURES.diffHeadDim32, batch: 1, tokens: 6 },
  { fixture: FIXTURES.diffNoSublnLambdaInit08, batch: 2, tokens: 6 },
  { fixture: FIXTURES.diffScalarLambdaGqa2, batch: 1, tokens: 8 },
  { fixture: FIXTURES.v2Mha, batch: 1, tokens: 9 },
  { fixture: FIXTURES.v2Gqa2Half, batch: 2, tokens: 7 },
  { fixture: FIXTURES.standardMhaTied, batch: 1, tokens: 9 },
  { fixture: FIXTURES.standardGqa4Half, batch: 1, tokens: 7 },
];

/** λ of every DIFF V1 layer as the model derived it, against the reference formula (host arithmetic). */
export async function lambdaCheck(model: Model, parameters: ReadonlyMap<string, HostTensor>): Promise<Check[]> {
  if (model.config.attention !== 'differential') return [];
  const actual = await model.lambdaValues();
  const expected = actual.map((_, depth) => reference.referenceLambda(parameters, depth, model.config));
  return [
    {
      label: 'λ per layer',
      actual: { shape: [expected.length], data: actual },
      expected: refTensor(expected, [expected.length]),
    },
  ];
}

function modelCase(spec: ModelSpec): ConformanceCase {
  const name = `model/${spec.fixture.label} B${spec.batch} T${spec.tokens}`;
  return defineCase(
    name,
    'model',
    async (ws, random) => {
      const { config, parameters } = fixtureModel(spec.fixture);
      const ids = Array.from({ length: spec.batch }, () => integers(random, spec.tokens, config.vocabSize));
      const model = DiffTransformer.fromParameters(config, parameters, { backend: ws.backend });
      try {
        const logits = ws.own(model.forward(ids));
        return [
          ...(await lambdaCheck(model, parameters)),
          { label: 'logits', actual: await ws.read(logits), expected: reference.modelLogits(config, parameters, ids) },
        ];
      } finally {
        model.dispose();
      }
    },
    { float32Only: true },
  );
}

export function modelCases(): ConformanceCase[] {
  return SPECS.map(modelCase);
}
