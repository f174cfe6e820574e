/**
 * Model folders on the CPU backend: native save/load is bit-exact; a DiffLlama folder written from a
 * native model by the inverse permutation gives identical logits; DiffLlama folders of every kv layout
 * (even, odd, MQA; sharded; tied) match a float64 reimplementation of transformers' DiffLlama written
 * in HF's own layout; broken folders raise typed errors and leave nothing allocated.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckpointError,
  DiffTransformer,
  MissingTensorError,
  SafetensorsHeaderError,
  TensorShapeMismatchError,
  UnexpectedTensorError,
  UnsupportedCheckpointError,
  createRandom,
  memory,
  serializeSafetensors,
  setBackend,
  tidy,
  type AttentionKind,
  type HostTensor,
  type ModelConfigInput,
} from '@diff-transformer/core';
import {
  loadModel,
  readModel,
  readSafetensorsFile,
  saveDiffLlama,
  saveModel,
  writeSafetensorsFile,
} from '@diff-transformer/core/node';
import { nmse, reference } from '@diff-transformer/conformance';
import '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-checkpoint-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
beforeAll(async () => {
  await setBackend('cpu');
});

const ids = [
  [3, 1, 4, 1, 5, 9, 2, 6, 5],
  [2, 7, 1, 8, 2, 8, 1, 8, 2],
];

async function logitsOf(model: DiffTransformer, rows: number[][] = ids): Promise<Float32Array> {
  const out = tidy(() => model.forward(rows));
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

describe('native model folders', () => {
  const kinds: AttentionKind[] = ['differential', 'differential-v2', 'standard'];
  for (const attention of kinds) {
    it(`${attention}: saved and loaded again gives bit-identical parameters and logits`, async () => {
      const config: ModelConfigInput = {
        vocabSize: 61,
        hiddenSize: 32,
        numLayers: 2,
        numHeads: 2,
        numKvHeads: 1,
        attention,
        tieWordEmbeddings: attention === 'standard',
      };
      const model = DiffTransformer.create(config, { seed: 5, std: 0.1, perturbNorms: 0.2 });
      const dir = join(scratch, `native-${attention}`);
      await saveModel(model, dir);
      expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']); // no temporary files left
      const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(json).toMatchObject({ format: 'diff-transformer', version: 1, attention, numKvHeads: 1 });
      const loaded = await loadModel(dir);
      expect(loaded.config).toEqual(model.config);
      const [a, b] = [await model.hostParameters(), await loaded.hostParameters()];
      for (const [name, p] of a) expect(b.get(name)!.data, name).toEqual(p.data);
      expect(await logitsOf(loaded)).toEqual(await logitsOf(model));
      model.dispose();
      loaded.dispose();
    });
  }

  it('a failed load raises a typed error naming file and tensor, and leaves nothing allocated', async () => {
    const model = DiffTransformer.create({ vocabSize: 20, hiddenSize: 16, numLayers: 1, numHeads: 2 }, { seed: 1 });
    const dir = join(scratch, 'broken');
    await saveModel(model, dir);
    const params = await model.hostParameters();
    model.dispose();
    const before = memory('cpu').liveStorages;
    const write = (entries: Array<[string, HostTensor]>) =>
      writeSafetensorsFile(
        join(dir, 'model.safetensors'),
        entries.map(([n, t]) => [n, { shape: t.shape, data: t.data }] as const),
      );
    const all = [...params];

    await write(all.filter(([n]) => n !== 'layers.0.attn.lambda_q2'));
    await expect(loadModel(dir)).rejects.toThrow(MissingTensorError);
    await expect(loadModel(dir)).rejects.toThrow(/model\.safetensors: tensor 'layers\.0\.attn\.lambda_q2': missing/);

    await write([...all, ['layers.0.attn.extra', { shape: [1], data: new Float32Array(1) }]]);
    await expect(loadModel(dir)).rejects.toThrow(UnexpectedTensorError);

    await write(all.map(([n, t]) => (n === 'norm.weight' ? [n, { shape: [2, 8], data: t.data }] : [n, t])));
    await expect(loadModel(dir)).rejects.toThrow(TensorShapeMismatchError);
    await expect(loadModel(dir)).rejects.toThrow(
      /tensor 'norm\.weight': shape \[2, 8\] does not match the config, which needs \[16\]/,
    );

    const good = serializeSafetensors(all.map(([n, t]) => [n, { shape: t.shape, data: t.data }] as const));
    writeFileSync(join(dir, 'model.safetensors'), good.subarray(0, good.length - 3)); // truncated
    await expect(loadModel(dir)).rejects.toThrow(CheckpointError);
    writeFileSync(join(dir, 'model.safetensors'), good.subarray(0, 4));
    await expect(loadModel(dir)).rejects.toThrow(SafetensorsHeaderError);

    writeFileSync(join(dir, 'config.json'), '{"format": "diff-transformer", "version": 1, "vocabSize": -3}');
    await expect(loadModel(dir)).rejects.toThrow(/config\.json.*vocabSize/s);
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama"}');
    await expect(loadModel(dir)).rejects.toThrow(/unrecognised model folder/);
    await expect(loadModel(join(scratch, 'does-not-exist'))).rejects.toThrow(/no config\.json/);
    expect(memory('cpu').liveStorages).toBe(before);
  });
});

/** Random DiffLlama parameters in HF names and layout (norms perturbed so a misplaced one shows). */
function randomDiffLlama(
  dims: {
    vocab: number;
    hidden: number;
    ffn: number;
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    tie: boolean;
  },
  seed: number,
) {
  const random = createRandom(seed);
  const tensor = (shape: number[], around = 0, std = 0.15): HostTensor => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => around + std * random.normal()),
  });
  const { vocab: v, hidden: e, ffn: f, heads: h, kvHeads: hkv, headDim: d } = dims;
  const p = new Map<string, HostTensor>();
  p.set('model.embed_tokens.weight', tensor([v, e], 0, 0.5));
  for (let i = 0; i < dims.layers; i++) {
    const l = `model.layers.${i}`;
    p.set(`${l}.input_layernorm.weight`, tensor([e], 1, 0.2));
    p.set(`${l}.self_attn.q_proj.weight`, tensor([h * d, e], 0, 0.3));
    p.set(`${l}.self_attn.k_proj.weight`, tensor([hkv * d, e], 0, 0.3));
    p.set(`${l}.self_attn.v_proj.weight`, tensor([hkv * d, e], 0, 0.3));
    p.set(`${l}.self_attn.o_proj.weight`, tensor([e, h * d]));
    for (const n of ['lambda_q1', 'lambda_k1', 'lambda_q2', 'lambda_k2'])
      p.set(`${l}.self_attn.${n}`, tensor([d], 0, 0.1));
    p.set(`${l}.post_attention_layernorm.weight`, tensor([e], 1, 0.2));
    p.set(`${l}.mlp.gate_proj.weight`, tensor([f, e]));
    p.set(`${l}.mlp.up_proj.weight`, tensor([f, e]));
    p.set(`${l}.mlp.down_proj.weight`, tensor([e, f]));
  }
  p.set('model.norm.weight', tensor([e], 1, 0.2));
  if (!dims.tie) p.set('lm_head.weight', tensor([v, e], 0, 0.3));
  const config = {
    model_type: 'diffllama',
    vocab_size: v,
    hidden_size: e,
    intermediate_size: f,
    num_hidden_layers: dims.layers,
    num_attention_heads: h,
    num_key_value_heads: hkv,
    head_dim: d,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: dims.tie,
    rope_parameters: { rope_type: 'default', rope_theta: 5000 },
    max_position_embeddings: 64,
  };
  return { params: p, config };
}

describe('Hugging Face DiffLlama folders', () => {
  it(
    'a DiffLlama folder written from a native model by the inverse permutation ' + 'gives identical logits (sharded)',
    async () => {
      const model = DiffTransformer.create(
        {
          vocabSize: 71,
          hiddenSize: 48,
          numLayers: 3,
          numHeads: 4,
          numKvHeads: 2,
          headDim: 6,
          rope: { layout: 'half', precision: 'float32' },
          subLayerNorm: { affine: false },
          maxPositions: 64,
        },
        { seed: 9, std: 0.15, perturbNorms: 0.2 },
      );
      const dir = join(scratch, 'hf-from-native');
      await saveDiffLlama(model.config, await model.hostParameters(), dir, { maxShardBytes: 20_000 });
      const files = readdirSync(dir);
      expect(files).toContain('model.safetensors.index.json');
      expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(2);
      const hf = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(hf).toMatchObject({
        model_type: 'diffllama',
        num_attention_heads: 8,
        num_key_value_heads: 4,
        head_dim: 6,
      });
      const contents = await readModel(dir);
      expect(contents.layout).toBe('diffllama');
      const loaded = await loadModel(dir);
      expect(loaded.config).toEqual(model.config);
      expect(await logitsOf(loaded)).toEqual(await logitsOf(model));
      // And the HF-layout float64 reference agrees with both.
      const hfParams = new Map<string, HostTensor>();
      for (const f of files.filter((x) => x.endsWith('.safetensors'))) {
        const st = await readSafetensorsFile(join(dir, f));
        for (const name of st.tensors.keys())
          hfParams.set(name, { shape: [...st.tensors.get(name)!.shape], data: await st.readFloat32(name) });
        await st.close();
      }
      const expected = reference.diffLlamaLogits(
        {
          vocabSize: 71,
          hiddenSize: 48,
          numLayers: 3,
          numAttentionHeads: 8,
          numKeyValueHeads: 4,
          headDim: 6,
          rmsNormEps: 1e-5,
          ropeTheta: 10000,
          tieWordEmbeddings: false,
        },
        hfParams,
        ids,
      );
      expect(nmse(await logitsOf(loaded), expected.data)).toBeLessThan(1e-10);
      model.dispose();
      loaded.dispose();
    },
  );

  const layouts = [
    { name: 'GQA with Hkv even (pure permutation)', heads: 8, kvHeads: 4, headDim: 4, tie: false },
    { name: 'GQA with Hkv = 2, four query heads per kv head', heads: 8, kvHeads: 2, headDim: 4, tie: true },
    { name: 'MQA (Hkv = 1, odd: expanded to multi-head)', heads: 4, kvHeads: 1, headDim: 8, tie: false },
    { name: 'Hkv = 3 (odd, H/Hkv = 2)', heads: 6, kvHeads: 3, headDim: 6, tie: false },
    { name: 'MHA', heads: 4, kvHeads: 4, headDim: 8, tie: true },
  ];
  for (const layout of layouts) {
    it(`${layout.name}: logits match the float64 HF-layout reference`, async () => {
      const dims = { vocab: 53, hidden: 24, ffn: 40, layers: 2, ...layout };
      const { params, config } = randomDiffLlama(dims, layout.heads * 10 + layout.kvHeads);
      const dir = join(scratch, `hf-${layout.heads}-${layout.kvHeads}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      await writeSafetensorsFile(
        join(dir, 'model.safetensors'),
        [...params].map(([n, t]) => [n, { shape: t.shape, data: t.data, dtype: 'F32' }] as const),
      );
      const model = await loadModel(dir);
      const expected = reference.diffLlamaLogits(
        {
          vocabSize: 53,
          hiddenSize: 24,
          numLayers: 2,
          numAttentionHeads: layout.heads,
          numKeyValueHeads: layout.kvHeads,
          headDim: layout.headDim,
          rmsNormEps: 1e-6,
          ropeTheta: 5000,
          tieWordEmbeddings: layout.tie,
        },
        params,
        ids,
      );
      const error = nmse(await logitsOf(model), expected.data);
      expect(error).toBeLessThan(1e-10);
      // Decoding through the KV cache gives the same last-token logits as the full pass.
      const cache = model.createCache(1, ids[0].length);
      let last: Float32Array = new Float32Array(0);
      for (const id of ids[0]) {
        const step = model.forward([[id]], { cache, lastTokenOnly: true });
        last = (await step.data()) as Float32Array;
        step.dispose();
      }
      cache.dispose();
      const full = expected.data.subarray((ids[0].length - 1) * 53, ids[0].length * 53);
      expect(nmse(last, full)).toBeLessThan(1e-10);
      model.dispose();
    });
  }

  it('refuses unsupported rope scaling by name, and a missing or misshapen HF tensor by name', async () => {
    const { params, config } = randomDiffLlama(
      { vocab: 11, hidden: 8, ffn: 8, layers: 1, heads: 2, kvHeads: 2, headDim: 4, tie: false },
      1,
    );
    const dir = join(scratch, 'hf-bad');
    mkdirSync(dir, { recursive: true });
    const entries = (m: Map<string, HostTensor>) =>
      [...m].map(([n, t]) => [n, { shape: t.shape, data: t.data }] as const);
    await writeSafetensorsFile(join(dir, 'model.safetensors'), entries(params));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ ...config, rope_parameters: { rope_type: 'yarn', rope_theta: 1e4, factor: 4 } }),
    );
    await expect(loadModel(dir)).rejects.toThrow(UnsupportedCheckpointError);
    await expect(loadModel(dir)).rejects.toThrow(/"yarn" is not supported/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const missing = new Map(params);
    missing.delete('model.layers.0.self_attn.lambda_k2');
    await writeSafetensorsFile(join(dir, 'model.safetensors'), entries(missing));
    await expect(loadModel(dir)).rejects.toThrow(/tensor 'model\.layers\.0\.self_attn\.lambda_k2': missing/);
    const wrong = new Map(params);
    wrong.set('model.layers.0.self_attn.k_proj.weight', { shape: [4, 8], data: new Float32Array(32) });
    await writeSafetensorsFile(join(dir, 'model.safetensors'), entries(wrong));
    await expect(loadModel(dir)).rejects.toThrow(
      /k_proj\.weight': shape \[4, 8\] does not match the config, which needs \[8, 8\]/,
    );
    const withInvFreq = new Map(params);
    withInvFreq.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [2], data: new Float32Array(2) });
    await writeSafetensorsFile(join(dir, 'model.safetensors'), entries(withInvFreq));
    (await loadModel(dir)).dispose(); // old checkpoints carry inv_freq buffers: ignored
  });
});
