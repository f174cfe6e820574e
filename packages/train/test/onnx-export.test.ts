/**
 * The ONNX export against this project's own model, through onnxruntime-node (its CPU execution
 * provider, every graph optimisation on): logits at NMSE ≤ 1e-10 in float32, and greedy decoding with
 * the graph's KV cache, one token a step, identical to core's generate for 32 tokens, with each step's
 * logits compared too. For DIFF V1 (and its ablations), V2, the baseline and a transformers DiffLlama
 * folder with GQA; float16 weights; external data; a left-padded batch.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DiffTransformer,
  errorStats,
  generate,
  type ModelConfigInput,
  openSafetensors,
  memorySource,
  setBackend,
  tidy,
} from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { loadModel, readModel, saveModel } from '@diff-transformer/core/node';
import { decoderInterface, roundToFloat16 } from '@diff-transformer/onnx';
import { exportModel } from '@diff-transformer/train/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, emptyCache, greedyOnnx, runDecoder } from './onnx-runtime.js';

const TOLERANCE = 1e-10;
const scratch = mkdtempSync(join(tmpdir(), 'difftx-onnx-export-'));
beforeAll(async () => {
  await setBackend('cpu');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SMALL: ModelConfigInput = { vocabSize: 256, hiddenSize: 64, numLayers: 2, numHeads: 2, maxPositions: 128 };
const VARIANTS: Record<string, Partial<ModelConfigInput>> = {
  'DIFF V1': {},
  'DIFF V1, GQA, half rotary, scalar λ, no per-head norm': {
    numHeads: 4,
    numKvHeads: 2,
    rope: { layout: 'half' },
    lambdaParameterization: 'scalar',
    subLayerNorm: null,
  },
  'DIFF V2, GQA': { attention: 'differential-v2', numHeads: 4, numKvHeads: 2 },
  'baseline, GQA, tied embeddings': { attention: 'standard', numHeads: 4, numKvHeads: 2, tieWordEmbeddings: true },
  // The real DiffLlama checkpoints' RoPE (Llama 3's, original length 64 so the scaling reaches the positions here).
  'DIFF V1, half rotary, Llama 3 RoPE scaling': {
    rope: {
      layout: 'half',
      theta: 500000,
      scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 },
    },
  },
  'DIFF V1, YaRN RoPE scaling (attention factor on cos and sin)': {
    rope: { scaling: { type: 'yarn', factor: 4, originalMaxPositions: 32 } },
  },
};
const DIFFLLAMA = fileURLToPath(new URL('../../../fixtures/diffllama/tiny-gqa/', import.meta.url));

const ids = (n: number, vocab: number, seed = 0) =>
  Array.from({ length: n }, (_, i) => (i * 37 + 11 + seed * 101) % vocab);

async function logitsOf(model: DiffTransformer, rows: number[][]): Promise<Float32Array> {
  const out = tidy(() => model.forward(rows));
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

/** The model's greedy ids and each step's last-token logits, from core's KV cache. */
async function greedyOurs(model: DiffTransformer, prompt: number[], steps: number): Promise<number[]> {
  const out: number[] = [];
  for await (const id of generate(model, prompt, { maxNewTokens: steps, greedy: true })) out.push(id);
  return out;
}

/** Exports `dir`, checks logits and 32 greedy tokens against `model`; returns the export folder. */
async function expectParity(model: DiffTransformer, dir: string, what: string): Promise<string> {
  const out = join(scratch, `${what.replace(/\W+/g, '-')}-onnx`);
  const result = await exportModel(dir, out, { format: 'onnx' });
  expect(result.files, what).toEqual(expect.arrayContaining(['model.onnx', 'genai_config.json']));
  const io = decoderInterface(model.config);
  const session = await createSession(join(out, 'model.onnx'));
  try {
    const prompt = ids(24, model.config.vocabSize);
    const { logits } = await runDecoder(session, io, [prompt], emptyCache(io, 1));
    const { nmse } = errorStats(logits, await logitsOf(model, [prompt]));
    expect(nmse, `${what}: prefill logits NMSE`).toBeLessThanOrEqual(TOLERANCE);

    // Decoding one token a step against the cache: every step's logits, then the ids.
    let cache = emptyCache(io, 1);
    const seen = [...prompt.slice(0, 6)];
    let input = [...seen];
    const ourCache = model.createCache(1, 64);
    try {
      for (let step = 0; step < 8; step++) {
        const r = await runDecoder(session, io, [input], cache);
        cache = r.cache;
        const ours = tidy(() => model.forward([input], { cache: ourCache }));
        const stepNmse = errorStats(r.logits, (await ours.data()) as Float32Array).nmse;
        ours.dispose();
        expect(stepNmse, `${what}: decode step ${step} logits NMSE`).toBeLessThanOrEqual(TOLERANCE);
        input = [ids(1, model.config.vocabSize, step + 3)[0]];
      }
    } finally {
      ourCache.dispose();
    }
    const expected = await greedyOurs(model, prompt.slice(0, 5), 32);
    expect(await greedyOnnx(session, io, prompt.slice(0, 5), 32), `${what}: greedy`).toEqual(expected);
    // A greedy run that only repeated one token would prove little.
    expect(new Set(expected).size, `${what}: distinct greedy ids`).toBeGreaterThan(3);
  } finally {
    await session.release();
  }
  return out;
}

describe('ONNX export on onnxruntime-node against this project', () => {
  for (const [name, overrides] of Object.entries(VARIANTS)) {
    it(`${name}: logits NMSE ≤ 1e-10, every decode step, greedy 32/32`, async () => {
      const model = DiffTransformer.create({ ...SMALL, ...overrides } as ModelConfigInput, { seed: 5, std: 0.2 });
      const dir = join(scratch, name.replace(/\W+/g, '-'));
      await saveModel(model, dir);
      try {
        await expectParity(model, dir, name);
      } finally {
        model.dispose();
      }
    });
  }

  it('a transformers DiffLlama folder with GQA: as difftx runs it, and greedy as transformers decoded it', async () => {
    const folder = join(DIFFLLAMA, 'model');
    const model = await loadModel(folder);
    try {
      const out = await expectParity(model, folder, 'DiffLlama tiny-gqa');
      const genai = JSON.parse(readFileSync(join(out, 'genai_config.json'), 'utf8'));
      expect(genai.model).toMatchObject({ bos_token_id: 1, eos_token_id: 2, context_length: 256 });
      // As the folder's config.json counts them: 8 attention heads (half-heads), 4 key/value heads of width 16.
      expect(genai.model.decoder).toMatchObject({ num_key_value_heads: 4, head_size: 16, num_attention_heads: 8 });
      // The oracle: transformers' greedy ids for its prompt (float64 on its CPU).
      const oracle = openSafetensors(memorySource(readFileSync(join(DIFFLLAMA, 'oracle.safetensors'))));
      const read = async (name: string) => Array.from((await (await oracle).read(name)) as ArrayLike<bigint>, Number);
      const prompt = await read('prompt');
      const greedy = await read('greedy');
      const session = await createSession(join(out, 'model.onnx'));
      const io = decoderInterface(model.config);
      expect(await greedyOnnx(session, io, prompt, greedy.length)).toEqual(greedy);
      await session.release();
    } finally {
      model.dispose();
    }
  });
});

describe('ONNX export refusals', () => {
  it('RoPE whose frequencies follow the length of each forward (dynamic NTK, LongRoPE) is refused by name', async () => {
    const model = DiffTransformer.create(
      { ...SMALL, rope: { scaling: { type: 'dynamic', factor: 2, originalMaxPositions: 32 } } } as ModelConfigInput,
      { seed: 5 },
    );
    const dir = join(scratch, 'dynamic');
    await saveModel(model, dir);
    model.dispose();
    await expect(exportModel(dir, join(scratch, 'dynamic-onnx'), { format: 'onnx' })).rejects.toThrow(
      /rope\.scaling\.type "dynamic"/,
    );
    expect(() => statSync(join(scratch, 'dynamic-onnx'))).toThrow();
  });
});

describe('ONNX export options', () => {
  it('float16 weights: half the file, and the logits of this model holding the same rounded weights', async () => {
    const model = DiffTransformer.create({ ...SMALL, numHeads: 4, numKvHeads: 2 }, { seed: 6, std: 0.2 });
    const dir = join(scratch, 'float16-model');
    await saveModel(model, dir);
    const [f32, f16] = await Promise.all(
      (['float32', 'float16'] as const).map(async (dtype) => {
        const out = join(scratch, `float16-${dtype}`);
        await exportModel(dir, out, { format: 'onnx', dtype });
        return out;
      }),
    );
    const size = (d: string) => statSync(join(d, 'model.onnx')).size;
    expect(size(f16) / size(f32)).toBeLessThan(0.56);
    // The model again, its weight matrices rounded to float16 as the export stores them.
    const { config, parameters } = await readModel(dir);
    const rounded = new Map(
      [...parameters].map(([name, p]) => [name, p.shape.length === 2 ? { ...p, data: roundToFloat16(p.data) } : p]),
    );
    const reference = DiffTransformer.fromParameters(config, rounded);
    const session = await createSession(join(f16, 'model.onnx'));
    try {
      const io = decoderInterface(config);
      const prompt = ids(24, config.vocabSize);
      const { logits } = await runDecoder(session, io, [prompt], emptyCache(io, 1));
      expect(errorStats(logits, await logitsOf(reference, [prompt])).nmse).toBeLessThanOrEqual(TOLERANCE);
      // …and within float16's rounding of the float32 model.
      expect(errorStats(logits, await logitsOf(model, [prompt])).nmse).toBeLessThan(1e-4);
    } finally {
      await session.release();
      reference.dispose();
      model.dispose();
    }
  });

  it('external data: model.onnx.data beside the graph, the same logits as inline', async () => {
    const model = DiffTransformer.create(SMALL, { seed: 7 });
    const dir = join(scratch, 'external-model');
    await saveModel(model, dir);
    const out = join(scratch, 'external-onnx');
    const result = await exportModel(dir, out, { format: 'onnx', externalData: true });
    expect(result.onnx).toMatchObject({ externalData: true, dtype: 'float32' });
    expect(readdirSync(out)).toContain('model.onnx.data');
    const session = await createSession(join(out, 'model.onnx'));
    try {
      const io = decoderInterface(model.config);
      const prompt = ids(16, 256);
      const { logits } = await runDecoder(session, io, [prompt], emptyCache(io, 1));
      expect(errorStats(logits, await logitsOf(model, [prompt])).nmse).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      await session.release();
      model.dispose();
    }
  });

  it('a left-padded batch: each sequence as if alone, through prefill and a decoding step', async () => {
    const model = DiffTransformer.create(
      { ...SMALL, attention: 'differential-v2', numHeads: 4 },
      { seed: 8, std: 0.2 },
    );
    const dir = join(scratch, 'batch-model');
    await saveModel(model, dir);
    const out = join(scratch, 'batch-onnx');
    await exportModel(dir, out, { format: 'onnx' });
    const session = await createSession(join(out, 'model.onnx'));
    const io = decoderInterface(model.config);
    const vocab = model.config.vocabSize;
    try {
      const long = ids(10, vocab, 1);
      const short = ids(6, vocab, 2);
      const pad = long.length - short.length;
      const rows = [long, [...new Array<number>(pad).fill(0), ...short]];
      const mask = [long.map(() => 1), [...new Array<number>(pad).fill(0), ...short.map(() => 1)]];
      // Positions as Optimum and onnxruntime-genai make them: the count of real tokens before.
      const positions = [long.map((_, i) => i), rows[1].map((_, i) => Math.max(0, i - pad))];
      const first = await runDecoder(session, io, rows, emptyCache(io, 2), { mask, positions });
      const v = vocab;
      const row = (logits: Float32Array, b: number, from: number, to: number, t: number) =>
        logits.subarray((b * t + from) * v, (b * t + to) * v);
      expect(errorStats(row(first.logits, 0, 0, 10, 10), await logitsOf(model, [long])).nmse).toBeLessThanOrEqual(
        TOLERANCE,
      );
      expect(errorStats(row(first.logits, 1, pad, 10, 10), await logitsOf(model, [short])).nmse).toBeLessThanOrEqual(
        TOLERANCE,
      );
      const next = [[3], [4]];
      const second = await runDecoder(session, io, next, first.cache, {
        mask: mask.map((m) => [...m, 1]),
        positions: [[long.length], [short.length]],
      });
      const alone = [await logitsOf(model, [[...long, 3]]), await logitsOf(model, [[...short, 4]])];
      expect(errorStats(second.logits.subarray(0, v), alone[0].subarray(10 * v)).nmse).toBeLessThanOrEqual(TOLERANCE);
      expect(errorStats(second.logits.subarray(v), alone[1].subarray(6 * v)).nmse).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      await session.release();
      model.dispose();
    }
  });
});
