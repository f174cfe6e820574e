import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  errorStats,
  HuggingFaceTokenizer,
  resolveConfig,
  setBackend,
  tidy,
  type AttentionKind,
} from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { loadModel, loadTokenizer, saveModel } from '@diff-transformer/core/node';
import { byteLevelTokenizerJson, diffLlamaProblems, ExportError } from '@diff-transformer/train';
import { EXPORT_TOLERANCE, exportModel } from '@diff-transformer/train/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MICRO, microModel } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-export-'));
beforeAll(async () => {
  await setBackend('cpu');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('export to transformers DiffLlama', () => {
  it('round trip: the folder loads back through the DiffLlama loader with the same logits', async () => {
    for (const [name, overrides] of [
      ['mha', {}],
      ['gqa-tied', { numHeads: 4, numKvHeads: 2, tieWordEmbeddings: true, hiddenSize: 64 }],
    ] as const) {
      const model = microModel(9, overrides);
      const dir = join(scratch, `${name}-model`);
      const out = join(scratch, `${name}-hf`);
      await saveModel(model, dir);
      const result = await exportModel(dir, out, { verifyOn: model.backend });
      expect(result.nmse).toBeLessThanOrEqual(EXPORT_TOLERANCE);
      expect(readdirSync(out).sort()).toEqual([
        'config.json',
        'model.safetensors',
        'tokenizer.json',
        'tokenizer_config.json',
      ]);
      const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      expect(config).toMatchObject({ model_type: 'diffllama', architectures: ['DiffLlamaForCausalLM'] });
      expect(config.num_attention_heads).toBe(2 * model.config.numHeads);
      const loaded = await loadModel(out);
      const ids = [[1, 40, 99, 200, 7, 7, 3, 255, 0, 17]];
      const a = tidy(() => model.forward(ids));
      const b = tidy(() => loaded.forward(ids));
      const { nmse } = errorStats((await b.data()) as Float32Array, (await a.data()) as Float32Array);
      expect(nmse, name).toBeLessThanOrEqual(1e-12);
      for (const t of [a, b, model, loaded]) t.dispose();
    }
  });

  it('a byte model gets a tokenizer.json whose ids are the bytes', async () => {
    const tokenizer = new HuggingFaceTokenizer(byteLevelTokenizerJson(), {});
    const text = 'Hello, wörld!\n\ttabs and “quotes” 🙂';
    const bytes = Array.from(new TextEncoder().encode(text));
    expect(tokenizer.vocabSize).toBe(256);
    expect(tokenizer.encode(text)).toEqual(bytes);
    expect(tokenizer.decode(bytes)).toBe(text);
    const fromFolder = await loadTokenizer(join(scratch, 'mha-hf'));
    expect(fromFolder!.encode(text)).toEqual(bytes);
  });

  it('refuses what DiffLlama cannot hold, naming each thing, and writes nothing', async () => {
    const cases: Array<[string, Partial<typeof MICRO> & { attention?: AttentionKind }, RegExp]> = [
      ['baseline', { attention: 'standard', numHeads: 4, headDim: 8 }, /attention 'standard'/],
      ['v2', { attention: 'differential-v2' }, /attention 'differential-v2'/],
      ['affine', { subLayerNorm: { affine: true } }, /affine subln weight/],
      ['interleaved', { rope: { layout: 'interleaved' } }, /rope\.layout 'interleaved'/],
      ['two-eps', { subLayerNorm: { affine: false, eps: 1e-6 } }, /subLayerNorm\.eps 0\.000001 ≠ normEps/],
      ['no-subln', { subLayerNorm: null }, /no per-head norm/],
      ['fixed-lambda-init', { lambdaInit: 0.8 }, /a fixed λinit 0\.8/],
      ['scalar-lambda', { lambdaParameterization: 'scalar' }, /a scalar λ/],
    ];
    for (const [name, overrides, pattern] of cases) {
      expect(diffLlamaProblems(resolveConfig({ ...MICRO, ...overrides }))).toHaveLength(1);
      const model = microModel(2, overrides);
      const dir = join(scratch, `${name}-model`);
      await saveModel(model, dir);
      model.dispose();
      const out = join(scratch, `${name}-hf`);
      const attempt = exportModel(dir, out);
      await expect(attempt).rejects.toThrow(ExportError);
      await expect(exportModel(dir, out)).rejects.toThrow(pattern);
      expect(readdirSync(scratch).filter((f) => f.includes(`${name}-hf`))).toEqual([]);
    }
    const both = diffLlamaProblems(
      resolveConfig({ ...MICRO, rope: { layout: 'interleaved' }, subLayerNorm: { affine: true } }),
    );
    expect(both).toHaveLength(2);
  });

  it('does not write over a folder that is not a model folder', async () => {
    const model = microModel(4);
    const dir = join(scratch, 'guard-model');
    await saveModel(model, dir);
    model.dispose();
    await expect(exportModel(dir, scratch)).rejects.toThrow(/holds files and is not a model folder/);
  });
});
