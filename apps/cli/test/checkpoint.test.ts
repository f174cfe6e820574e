/**
 * Model folders on the CPU backend: native save/load is bit-exact; a DiffLlama folder written from a
 * native model by the inverse permutation gives identical logits; DiffLlama folders of every kv layout
 * (even, odd, MQA; sharded; tied) match a float64 reimplementation of transformers' DiffLlama written
 * in HF's own layout; broken folders raise typed errors and leave nothing allocated.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CheckpointError,
  DiffTransformer,
  MissingTensorError,
  NonFiniteTensorError,
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

const require = createRequire(import.meta.url);
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
    await expect(loadModel(join(scratch, 'does-not-exist'))).rejects.toThrow(
      /does-not-exist: cannot read the folder: not found/,
    );
    expect(memory('cpu').liveStorages).toBe(before);
  });
});

describe('non-finite parameters', () => {
  it('are refused at load with the tensors and counts named, unless allowNonFinite', async () => {
    const config = { vocabSize: 20, hiddenSize: 16, numLayers: 1, numHeads: 2 };
    const healthy = DiffTransformer.create(config, { seed: 1 });
    const params = await healthy.hostParameters();
    healthy.dispose();
    const q = params.get('layers.0.attn.q_proj.weight')!.data;
    q[3] = NaN;
    q[7] = NaN;
    q[9] = -Infinity;
    params.get('norm.weight')!.data[0] = Infinity;
    const model = DiffTransformer.fromParameters(config, params);
    const dir = join(scratch, 'non-finite');
    await saveModel(model, dir);
    model.dispose();
    const before = memory('cpu').liveStorages;
    await expect(loadModel(dir)).rejects.toThrow(NonFiniteTensorError);
    await expect(loadModel(dir)).rejects.toThrow(
      new RegExp(
        "model\\.safetensors: tensor 'layers\\.0\\.attn\\.q_proj\\.weight': holds 2 NaN and 1 ±Infinity among " +
          "its 256 values; 1 more tensor too: 'norm\\.weight' \\(1 ±Infinity\\); .*allowNonFinite: true",
      ),
    );
    const error = await loadModel(dir).catch((e: NonFiniteTensorError) => e);
    expect((error as NonFiniteTensorError).tensors.map((t) => [t.tensor, t.nan, t.infinite])).toEqual([
      ['layers.0.attn.q_proj.weight', 2, 1],
      ['norm.weight', 0, 1],
    ]);
    expect(memory('cpu').liveStorages).toBe(before);
    const loaded = await loadModel(dir, { allowNonFinite: true });
    expect((await loaded.hostParameters()).get('norm.weight')!.data[0]).toBe(Infinity);
    loaded.dispose();
  });
});

describe('saving over an existing model folder', () => {
  // Two models of the same shapes that a mismatched config.json would not reveal: normEps tells them apart.
  const config = (normEps: number) => ({ vocabSize: 512, hiddenSize: 256, numLayers: 4, numHeads: 4, normEps });
  const seeds = new Map([
    [1e-5, 1],
    [1e-6, 2],
  ]);
  const firstEmbedding = new Map<number, number[]>();
  beforeAll(async () => {
    for (const [normEps, seed] of seeds) {
      const model = DiffTransformer.create(config(normEps), { seed });
      firstEmbedding.set(normEps, [...(await model.hostParameters()).get('embed_tokens.weight')!.data.slice(0, 8)]);
      model.dispose();
    }
  });

  /** The folder holds one of the two models whole: its config and its weights belong together. */
  async function expectWhole(dir: string): Promise<number> {
    const model = await loadModel(dir);
    const normEps = model.config.normEps;
    const embedding = (await model.hostParameters()).get('embed_tokens.weight')!.data;
    model.dispose();
    expect(firstEmbedding.has(normEps), `normEps ${normEps}`).toBe(true);
    expect([...embedding.slice(0, 8)]).toEqual(firstEmbedding.get(normEps));
    return normEps;
  }

  const leftovers = (dir: string) =>
    readdirSync(join(dir, '..')).filter((name) => name.startsWith(`.${basename(dir)}.`));

  it('a save killed at any moment leaves the old or the new folder whole; the next save cleans up', async () => {
    const dir = join(scratch, 'killed-saves', 'model');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), '{"kept": true}');
    const child = join(scratch, 'save-forever.mjs');
    writeFileSync(
      child,
      `const [core, node, cpu, dir] = process.argv.slice(2);
const { DiffTransformer, setBackend } = await import(core);
const { saveModel } = await import(node);
await import(cpu);
await setBackend('cpu');
const config = (normEps) => (${config.toString()})(normEps);
const models = [DiffTransformer.create(config(1e-5), { seed: 1 }), DiffTransformer.create(config(1e-6), { seed: 2 })];
for (let i = 0; ; i++) {
  await saveModel(models[i % 2], dir);
  process.stdout.write('saved\\n');
}
`,
    );
    const resolve = (name: string) => pathToFileURL(require.resolve(name)).href;
    const args = [
      child,
      resolve('@diff-transformer/core'),
      resolve('@diff-transformer/core/node'),
      resolve('@diff-transformer/backend-cpu'),
      dir,
    ];
    const random = createRandom(9);
    for (let round = 0; round < 8; round++) {
      const saver = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      // Killed at a random moment of a save, once at least one save has finished.
      await new Promise<void>((done) => {
        saver.stdout.once('data', () => {
          setTimeout(() => {
            saver.kill('SIGKILL');
            done();
          }, random.next() * 80);
        });
      });
      await new Promise((done) => saver.once('exit', done));
      if (!existsSync(dir)) {
        // Killed between the two renames of the swap: both folders are complete beside it.
        expect(leftovers(dir).some((name) => name.endsWith('.old'))).toBe(true);
      }
      await expectWhole(dir); // loadModel finishes an interrupted swap first
      expect(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).toBe('{"kept": true}');
    }
    const model = DiffTransformer.create(config(1e-5), { seed: 1 });
    await saveModel(model, dir);
    model.dispose();
    expect(leftovers(dir)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
  }, 120_000);

  it('finishes a swap that stopped between its renames, and removes what killed saves left', async () => {
    const dir = join(scratch, 'interrupted', 'model');
    const gone = spawnSync(process.execPath, ['-e', '']).pid; // a process that no longer runs
    const a = DiffTransformer.create(config(1e-5), { seed: 1 });
    const b = DiffTransformer.create(config(1e-6), { seed: 2 });
    await saveModel(a, dir);
    await saveModel(b, join(scratch, 'interrupted', 'b'));
    // The state a kill between the two renames leaves: the old folder aside, the new one complete.
    renameSync(dir, join(dir, '..', `.model.${gone}-0123abcd.old`));
    renameSync(join(scratch, 'interrupted', 'b'), join(dir, '..', `.model.${gone}-0123abcd.new`));
    expect(await expectWhole(dir)).toBe(1e-6);
    expect(leftovers(dir)).toEqual([]);
    // A staging folder killed half-way, and a temporary file of the older per-file writes.
    mkdirSync(join(dir, '..', `.model.${gone}-4567cdef.new`));
    writeFileSync(join(dir, '..', `.model.${gone}-4567cdef.new`, 'model.safetensors'), 'half');
    writeFileSync(join(dir, `.model.safetensors.${gone}.89abcdef.tmp`), 'half');
    await saveModel(a, dir);
    expect(leftovers(dir)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(await expectWhole(dir)).toBe(1e-5);
    // A sharded DiffLlama checkpoint saved over: its shards and index go with it.
    const hf = DiffTransformer.create(
      { ...config(1e-5), rope: { layout: 'half' }, subLayerNorm: { affine: false, eps: 1e-5 } },
      { seed: 3 },
    );
    await saveDiffLlama(hf.config, await hf.hostParameters(), dir, { maxShardBytes: 1 << 20 });
    expect(readdirSync(dir).filter((name) => name.startsWith('model-')).length).toBeGreaterThan(1);
    await saveModel(a, dir);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    writeFileSync(join(scratch, 'interrupted', 'a-file'), 'x');
    await expect(saveModel(a, join(scratch, 'interrupted', 'a-file'))).rejects.toThrow(/is not a folder/);
    for (const m of [a, b, hf]) m.dispose();
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
          rope: { layout: 'half' }, // float64 tables, as the DiffLlama loader computes them
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
      JSON.stringify({ ...config, rope_parameters: { rope_type: 'su', rope_theta: 1e4, factor: 4 } }),
    );
    await expect(loadModel(dir)).rejects.toThrow(UnsupportedCheckpointError);
    await expect(loadModel(dir)).rejects.toThrow(/"su" is not supported/);
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
    (await loadModel(dir)).dispose(); // old checkpoints hold inv_freq buffers: ignored
    // A shard index naming a tensor the config has no place for (and no shard holds): unexpected, not missing.
    rmSync(join(dir, 'model.safetensors'));
    await writeSafetensorsFile(join(dir, 'model-00001-of-00001.safetensors'), entries(params));
    const weightMap = Object.fromEntries([...params.keys()].map((n) => [n, 'model-00001-of-00001.safetensors']));
    const index = (map: Record<string, string>) =>
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: map }));
    index({ ...weightMap, 'model.layers.0.self_attn.extra': 'model-00001-of-00001.safetensors' });
    await expect(loadModel(dir)).rejects.toThrow(UnexpectedTensorError);
    await expect(loadModel(dir)).rejects.toThrow(
      /index\.json: tensor 'model\.layers\.0\.self_attn\.extra': unexpected: the model config has no parameter of that/,
    );
    index({ ...weightMap, 'model.layers.0.self_attn.rotary_emb.inv_freq': 'model-00001-of-00001.safetensors' });
    (await loadModel(dir)).dispose(); // an ignorable buffer the shard lacks: still ignored
    // Listed in a shard that is not there, held by one where the index does not place it.
    index({ ...weightMap, 'model.norm.weight': 'model-00002-of-00002.safetensors' });
    await expect(loadModel(dir)).rejects.toThrow(
      /tensor 'model\.norm\.weight': unexpected: the shard holds it but .*index\.json does not list it here$/,
    );
    rmSync(join(dir, 'model-00001-of-00001.safetensors'));
    await writeSafetensorsFile(
      join(dir, 'model-00001-of-00001.safetensors'),
      entries(new Map([...params].filter(([n]) => n !== 'model.norm.weight'))),
    );
    await expect(loadModel(dir)).rejects.toThrow(
      /tensor 'model\.norm\.weight': missing: the model config needs it \(the index lists it in shard model-00002/,
    );
  });
});
