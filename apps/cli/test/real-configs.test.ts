/**
 * The config.json of DiffLlama checkpoints that exist on the Hugging Face Hub (fixtures/configs/,
 * fixtures/README.md says where each came from). Each loadable one is read whole (its sizes give the
 * published parameter count), then built with random weights at its real widths — hidden 2048, FFN
 * 8192, 32 query and 8 key/value heads of 64, its RoPE — with num_hidden_layers cut to 2 and the
 * vocabulary cut to 2048 rows, and generates. The vocabulary is cut because a 128256 × 2048 float32
 * table is 1 GB on the host and again on the backend: building the 0.3B-handcut with 2 layers and
 * generating 2 tokens took 42.7 s and 3.8 GB peak RSS at the real vocabulary, 11.2 s and 1.2 GB with
 * 2048 rows (cpu backend, native AVX-512, 2 cores, load 7). The model_type
 * "diff_llama" config is refused by name.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  DiffTransformer,
  UnsupportedCheckpointError,
  describeModelFolder,
  diffLlamaDims,
  diffLlamaModelConfig,
  diffLlamaParameterShapes,
  fromDiffLlamaParameters,
  generate,
  memoryFolder,
  setBackend,
  tidy,
  type HostTensor,
} from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';

const configs = fileURLToPath(new URL('../../../fixtures/configs/', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));
const readJson = (path: string) => JSON.parse(readFileSync(`${configs}${path}`, 'utf8')) as Record<string, unknown>;

/**
 * Random weights, cheaply: one block of LCG numbers tiled over each tensor (norm weights near 1), and
 * one array shared by the tensors of the same kind and shape (every layer's gate_proj, say).
 */
function randomWeights(json: Record<string, unknown>): Map<string, HostTensor> {
  const dims = diffLlamaDims(json, 'config.json');
  let state = 7;
  const shared = new Map<string, Float32Array>();
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of diffLlamaParameterShapes(dims)) {
    const kind = name.endsWith('norm.weight') ? 'norm' : name.includes('lambda_') ? 'lambda' : 'weight';
    const key = `${kind} ${shape.join('x')}`;
    let data = shared.get(key);
    if (!data) {
      const size = shape.reduce((a, b) => a * b, 1);
      const block = new Float32Array(Math.min(size, 4099));
      for (let i = 0; i < block.length; i++) {
        state = (state * 1664525 + 1013904223) >>> 0;
        const u = state / 2 ** 32 - 0.5;
        block[i] = kind === 'norm' ? 1 + 0.1 * u : kind === 'lambda' ? 0.3 * u : 0.04 * u;
      }
      data = new Float32Array(size);
      for (let at = 0; at < size; at += block.length)
        data.set(block.subarray(0, Math.min(block.length, size - at)), at);
      shared.set(key, data);
    }
    out.set(name, { shape, data });
  }
  return out;
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('real DiffLlama configs', () => {
  const loadable = [
    {
      name: 'kajuma--DiffLlama-0.3B-handcut',
      parameters: 1_235_818_496, // "1.24B parameters despite its name": tied, 128256-token vocabulary
      rope: {
        theta: 500000,
        scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
      },
    },
    {
      name: 'kajuma--DiffLlama-1B',
      parameters: 1_392_580_608, // the Hub's "1.39B params": untied, 102400-token vocabulary
      rope: { theta: 10000, scaling: { type: 'default' } },
    },
  ];
  for (const fixture of loadable) {
    it(`${fixture.name}: read whole (${fixture.parameters} parameters), built at its widths with 2 layers, generates`, async () => {
      const json = readJson(`${fixture.name}/config.json`);
      const full = diffLlamaDims(json, 'config.json');
      const count = [...diffLlamaParameterShapes(full).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
      expect(count).toBe(fixture.parameters);
      expect(diffLlamaModelConfig(full, 'config.json').rope).toMatchObject(fixture.rope);

      const cut = { ...json, num_hidden_layers: 2, vocab_size: 2048 };
      const dims = diffLlamaDims(cut, 'config.json');
      const config = diffLlamaModelConfig(dims, 'config.json');
      expect(config).toMatchObject({
        hiddenSize: 2048,
        intermediateSize: 8192,
        numHeads: 16,
        numKvHeads: 4,
        headDim: 64,
      });
      const model = DiffTransformer.fromParameters(config, fromDiffLlamaParameters(dims, config, randomWeights(cut)));
      try {
        const logits = tidy(() => model.forward([[1, 2, 3, 4]], { lastTokenOnly: true }));
        const values = await logits.data();
        logits.dispose();
        expect(values).toHaveLength(2048);
        expect(values.every(Number.isFinite)).toBe(true);
        const ids: number[] = [];
        for await (const id of generate(model, [1, 2, 3, 4], { maxNewTokens: 2 })) ids.push(id);
        expect(ids).toHaveLength(2);
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 2048)).toBe(true);
      } finally {
        model.dispose();
      }
    }, 120_000);
  }

  it('peihaowang/diff-transformer-410m-…: model_type "diff_llama" is refused by name, saying how it differs', async () => {
    const text = readFileSync(`${configs}peihaowang--diff-transformer-410m-nh16-dclm-7.5b/config.json`);
    const folder = memoryFolder({ 'config.json': text }, 'diff-transformer-410m');
    await expect(describeModelFolder(folder)).rejects.toThrow(UnsupportedCheckpointError);
    await expect(describeModelFolder(folder)).rejects.toThrow(
      /model_type "diff_llama" with attn_family "diff_attn" is not transformers' DiffLlama \(model_type "diffllama"\)/,
    );
    // The CLI says it in one line (exit 1), before looking for weights.
    const r = spawnSync(
      process.execPath,
      [CLI, 'inspect', `${configs}peihaowang--diff-transformer-410m-nh16-dclm-7.5b`],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^difftx: .*model_type "diff_llama" with attn_family "diff_attn"/);
  });
});
