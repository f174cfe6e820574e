/** What onnxExport refuses (by name, before anything is made) and the genai_config.json it writes. */
import type { ModelConfig } from '@diff-transformer/core';
import { GENAI_CONFIG_FILE, onnxExport, OnnxExportError } from '@diff-transformer/onnx';
import { describe, expect, it } from 'vitest';
import { variant } from './models.js';

describe('onnxExport', () => {
  it('refuses a RoPE whose frequencies follow the length of each forward (dynamic, LongRoPE), naming it', () => {
    const { config, parameters } = variant('v1 mha interleaved');
    for (const scaling of [
      { type: 'dynamic', factor: 2, originalMaxPositions: 64 },
      { type: 'longrope', shortFactor: [], longFactor: [], originalMaxPositions: 64, attentionFactor: 1 },
    ]) {
      const scaled = { ...config, rope: { ...config.rope, scaling } } as unknown as ModelConfig;
      expect(() => onnxExport(scaled, parameters)).toThrow(OnnxExportError);
      expect(() => onnxExport(scaled, parameters)).toThrow(new RegExp(`rope\\.scaling\\.type "${scaling.type}"`));
    }
    // Position-only scalings are the model's own tables (their logits: train's onnx-export test).
    const llama3 = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 };
    const scaled = { ...config, rope: { ...config.rope, scaling: llama3 } } as unknown as ModelConfig;
    expect(onnxExport(scaled, parameters).files.length).toBe(2);
  });

  it('refuses float16 for a weight past its range, and a non-positive context', () => {
    const { config, parameters } = variant('baseline gqa');
    const big = new Map(parameters);
    const q = parameters.get('layers.0.attn.q_proj.weight')!;
    const data = Float32Array.from(q.data);
    data[5] = 70000;
    big.set('layers.0.attn.q_proj.weight', { shape: q.shape, data });
    expect(() => onnxExport(config, big, { dtype: 'float16' })).toThrow(
      /layers\.0\.attn\.q_proj\.weight holds 70000, past float16's largest value 65504/,
    );
    expect(onnxExport(config, big, { dtype: 'float32' }).files.length).toBe(2);
    expect(() => onnxExport(config, parameters, { maxPositions: 0 })).toThrow(/maxPositions 0/);
  });

  it("writes genai_config.json for onnxruntime-genai's decoder loop, the cache's heads as the graph has them", () => {
    const { config, parameters } = variant('v1 gqa half, tied, no subln weight');
    const { files, io } = onnxExport(config, parameters, { tokens: { bos: 1, eos: [2, 3] } });
    const file = files.find((f) => f.name === GENAI_CONFIG_FILE)!;
    const json = JSON.parse(new TextDecoder().decode(file.chunks[0] as Uint8Array));
    expect(json.model).toMatchObject({
      type: 'decoder',
      bos_token_id: 1,
      eos_token_id: [2, 3],
      context_length: config.maxPositions,
      vocab_size: config.vocabSize,
      decoder: {
        filename: 'model.onnx',
        // DIFF V1 caches 2·Hkv key half-heads and value halves of width d.
        num_key_value_heads: 2 * config.numKvHeads,
        num_attention_heads: 2 * config.numHeads,
        head_size: config.headDim,
        num_hidden_layers: config.numLayers,
        inputs: { past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value' },
        outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
      },
    });
    expect(json.model).not.toHaveProperty('pad_token_id');
    expect(json.search).toMatchObject({ past_present_share_buffer: false, num_beams: 1, max_length: io.maxPositions });
  });
});
