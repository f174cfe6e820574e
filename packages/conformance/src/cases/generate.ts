/**
 * generate(): greedy decoding must reproduce the reference model's argmax continuation (the fixtures'
 * prompts are chosen so every step's top two logits are far apart compared with float32 round-off),
 * and seeded sampling must repeat itself for one seed and change with another.
 */
import type { GenerateOptions, Random } from '@diff-transformer/core';
import { DiffTransformer, generate } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import { refTensor } from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import type { ModelFixture } from './fixtures.js';
import { FIXTURES, fixtureModel } from './fixtures.js';
import { defineCase } from './harness.js';
import { integers } from './inputs.js';

export interface GreedySpec {
  readonly fixture: ModelFixture;
  readonly promptLength: number;
  readonly maxNewTokens: number;
}

export const GREEDY: readonly GreedySpec[] = [
  { fixture: FIXTURES.diffMhaTied, promptLength: 5, maxNewTokens: 8 },
  { fixture: FIXTURES.v2Gqa2Half, promptLength: 3, maxNewTokens: 8 },
  { fixture: FIXTURES.standardGqa4Half, promptLength: 4, maxNewTokens: 8 },
];

interface SamplingSpec {
  readonly fixture: ModelFixture;
  readonly label: string;
  readonly options: Omit<GenerateOptions, 'seed'>;
}

const SAMPLING: readonly SamplingSpec[] = [
  {
    fixture: FIXTURES.diffGqa2Half,
    label: 'temperature 1.5, top-k 40',
    options: { maxNewTokens: 12, temperature: 1.5, topK: 40 },
  },
  {
    fixture: FIXTURES.v2Mha,
    label: 'temperature 1.2, top-p 0.95',
    options: { maxNewTokens: 12, temperature: 1.2, topP: 0.95 },
  },
];

/** The prompt of a greedy spec, as its case draws it; exported so the suite's tests can check its margins. */
export function greedyPrompt(spec: GreedySpec, random: Random): number[] {
  return integers(random, spec.promptLength, spec.fixture.config.vocabSize);
}

export function greedyCaseName(spec: GreedySpec): string {
  return `generate/greedy ${spec.fixture.label} equals the reference argmax continuation`;
}

async function collect(model: DiffTransformer, prompt: readonly number[], options: GenerateOptions): Promise<number[]> {
  const ids: number[] = [];
  for await (const id of generate(model, prompt, options)) ids.push(id);
  return ids;
}

function greedyCase(spec: GreedySpec): ConformanceCase {
  return defineCase(
    greedyCaseName(spec),
    'generate',
    async (ws, random) => {
      const { config, parameters } = fixtureModel(spec.fixture);
      const prompt = greedyPrompt(spec, random);
      const expected = reference.greedyContinuation(config, parameters, prompt, spec.maxNewTokens).ids;
      const model = DiffTransformer.fromParameters(config, parameters, { backend: ws.backend });
      try {
        const ids = await collect(model, prompt, { maxNewTokens: spec.maxNewTokens, greedy: true });
        return [
          {
            label: 'ids',
            actual: { shape: [ids.length], data: ids },
            expected: refTensor(expected, [expected.length]),
          },
        ];
      } finally {
        model.dispose();
      }
    },
    { float32Only: true },
  );
}

function samplingCase(spec: SamplingSpec): ConformanceCase {
  return defineCase(
    `generate/sampling ${spec.fixture.label} ${spec.label}: a seed repeats, another seed differs`,
    'generate',
    async (ws, random) => {
      const { config, parameters } = fixtureModel(spec.fixture);
      const prompt = integers(random, 4, config.vocabSize);
      const model = DiffTransformer.fromParameters(config, parameters, { backend: ws.backend });
      try {
        const first = await collect(model, prompt, { ...spec.options, seed: 11 });
        const again = await collect(model, prompt, { ...spec.options, seed: 11 });
        const other = await collect(model, prompt, { ...spec.options, seed: 12 });
        if (other.join(',') === first.join(',')) ws.fail(`seeds 11 and 12 gave the same ids [${first.join(', ')}]`);
        return [
          {
            label: 'ids of seed 11, twice',
            actual: { shape: [again.length], data: again },
            expected: refTensor(first, [first.length]),
          },
        ];
      } finally {
        model.dispose();
      }
    },
    { float32Only: true },
  );
}

export function generateCases(): ConformanceCase[] {
  return [...GREEDY.map(greedyCase), ...SAMPLING.map(samplingCase)];
}
