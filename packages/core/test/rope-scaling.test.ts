/**
 * RoPE scaling in core: the formulas' defining properties, dynamic NTK's length state, which tables a
 * forward gets (fixed, longrope's short/long, dynamic's window), and the config round trips. The
 * numbers themselves are checked against the independent float64 reference in conformance
 * (rotary/rope scaling …, model/diffllama rope …, decode/diffllama rope …).
 */
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  RotaryTables,
  diffLlamaDims,
  diffLlamaModelConfig,
  dynamicRopeLength,
  initParameters,
  memoryFolder,
  parameterShapes,
  readModelFolder,
  resolveConfig,
  ropeFrequencies,
  rotaryTablesOnHost,
  serializeSafetensors,
  toDiffLlama,
  type ModelConfig,
  type RopeScaling,
} from '../src/index.js';
import { createToyBackend } from './toy-backend.js';

const plain = (dim: number, theta: number) => Array.from({ length: dim / 2 }, (_, j) => theta ** ((-2 * j) / dim));

describe('RoPE scaling formulas', () => {
  it('default is θ^(−2j/d); linear divides every frequency by the factor', () => {
    const expected = plain(64, 500000);
    expect([...ropeFrequencies(64, 500000, { type: 'default' }).inverseFrequencies]).toEqual(expected);
    const linear = ropeFrequencies(64, 500000, { type: 'linear', factor: 4 });
    expect([...linear.inverseFrequencies]).toEqual(expected.map((f) => f / 4));
    expect(linear.attentionFactor).toBe(1);
  });

  it('llama3 keeps short wavelengths, divides long ones by the factor, and interpolates between', () => {
    const scaling: RopeScaling = {
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: 8192,
    };
    const base = plain(64, 500000);
    const scaled = ropeFrequencies(64, 500000, scaling).inverseFrequencies;
    let medium = 0;
    base.forEach((f, j) => {
      const wavelength = (2 * Math.PI) / f;
      if (wavelength < 2048) expect(scaled[j]).toBe(f);
      else if (wavelength > 8192) expect(scaled[j]).toBeCloseTo(f / 32, 20);
      else {
        medium++;
        expect(scaled[j]).toBeLessThan(f);
        expect(scaled[j]).toBeGreaterThan(f / 32);
      }
    });
    expect(medium).toBeGreaterThan(0);
  });

  it('yarn extrapolates the fast dimensions, interpolates the slow ones, and scales cos/sin', () => {
    const scaling: RopeScaling = {
      type: 'yarn',
      factor: 16,
      originalMaxPositions: 8192,
      attentionFactor: 1.2,
      betaFast: 32,
      betaSlow: 1,
      truncate: true,
    };
    const base = plain(64, 500000);
    const { inverseFrequencies, attentionFactor } = ropeFrequencies(64, 500000, scaling);
    expect(inverseFrequencies[0]).toBe(base[0]);
    expect(inverseFrequencies[31]).toBeCloseTo(base[31] / 16, 20);
    expect(attentionFactor).toBe(1.2);
    const table = rotaryTablesOnHost({ dim: 64, theta: 500000, scaling }, 1);
    expect(table.cos[0]).toBeCloseTo(1.2, 6); // position 0: cos 0 = 1, times the attention factor
  });

  it('dynamic keeps the base up to the original length and grows it beyond', () => {
    const scaling: RopeScaling = { type: 'dynamic', factor: 2, originalMaxPositions: 16 };
    expect([...ropeFrequencies(16, 1e4, scaling, 16).inverseFrequencies]).toEqual(plain(16, 1e4));
    expect([...ropeFrequencies(16, 1e4, scaling).inverseFrequencies]).toEqual(plain(16, 1e4));
    const grown = 1e4 * (2 * (24 / 16) - 1) ** (16 / 14);
    expect(ropeFrequencies(16, 1e4, scaling, 24).inverseFrequencies[3]).toBeCloseTo(grown ** (-6 / 16), 15);
  });

  it("dynamic's length state grows, is kept under the grown length, and resets below the original", () => {
    let grown = 16;
    const seen = [12, 17, 18, 20, 18, 19, 16, 6, 7, 30].map((length) => (grown = dynamicRopeLength(grown, length, 16)));
    expect(seen).toEqual([16, 17, 18, 20, 20, 20, 20, 16, 16, 30]);
  });

  it('longrope takes the short factors up to the original length and the long ones beyond', () => {
    const scaling: RopeScaling = {
      type: 'longrope',
      shortFactor: [1, 2],
      longFactor: [3, 4],
      originalMaxPositions: 16,
      attentionFactor: 1,
    };
    const base = plain(4, 1e4);
    expect([...ropeFrequencies(4, 1e4, scaling, 16).inverseFrequencies]).toEqual([base[0], base[1] / 2]);
    expect([...ropeFrequencies(4, 1e4, scaling, 17).inverseFrequencies]).toEqual([base[0] / 3, base[1] / 4]);
  });

  it("the float32 mode of plain RoPE is unchanged: PyTorch's steps, rounded as before", () => {
    const f = Math.fround;
    const { cos } = rotaryTablesOnHost({ dim: 16, theta: 1e4, precision: 'float32' }, 40);
    const inverse = f(1 / f(1e4 ** f(6 / 16)));
    expect(cos[39 * 8 + 3]).toBe(f(Math.cos(f(39 * inverse))));
  });
});

describe('rotary tables of a forward', () => {
  it('fixed scalings rotate from one table at the forward offset; dynamic past L₀ gets a window of its rows', async () => {
    const backend = createToyBackend();
    const dynamic: RopeScaling = { type: 'dynamic', factor: 2, originalMaxPositions: 16 };
    const tables = new RotaryTables(backend, { dim: 8, theta: 1e4, scaling: dynamic }, 8);
    try {
      const within = tables.forPositions(10, 4);
      expect(within.positionOffset).toBe(10);
      expect(within.cos.shape[0]).toBeGreaterThanOrEqual(14);
      const prefix = await within.cos.data();
      expect([...prefix.slice(0, 14 * 4)]).toEqual([...rotaryTablesOnHost({ dim: 8, theta: 1e4 }, 14).cos]);

      const beyond = tables.forPositions(19, 1); // length 20 > 16: the base grows to 20
      expect(beyond.positionOffset).toBe(0);
      expect(beyond.cos.shape).toEqual([1, 4]);
      const expected = rotaryTablesOnHost({ dim: 8, theta: 1e4, scaling: dynamic }, 1, { start: 19, length: 20 });
      expect([...(await beyond.cos.data())]).toEqual([...expected.cos]);

      // A new sequence of 18 tokens: still the base of 20, as transformers keeps it.
      const kept = tables.forPositions(0, 18);
      const keptExpected = rotaryTablesOnHost({ dim: 8, theta: 1e4, scaling: dynamic }, 18, { start: 0, length: 20 });
      expect([...(await kept.cos.data())]).toEqual([...keptExpected.cos]);
      // Shorter than L₀: reset to the original frequencies.
      const reset = tables.forPositions(0, 6);
      expect(reset.positionOffset).toBe(0);
      expect([...(await reset.cos.data()).slice(0, 24)]).toEqual([
        ...rotaryTablesOnHost({ dim: 8, theta: 1e4 }, 6).cos,
      ]);
    } finally {
      tables.dispose();
    }
    expect(backend.live).toBe(0);
  });

  it('longrope switches to the long-factor table once a forward passes L₀', async () => {
    const backend = createToyBackend();
    const scaling: RopeScaling = {
      type: 'longrope',
      shortFactor: [1, 2],
      longFactor: [3, 4],
      originalMaxPositions: 16,
      attentionFactor: 1.5,
    };
    const tables = new RotaryTables(backend, { dim: 4, theta: 1e4, scaling }, 8);
    try {
      const short = await tables.forPositions(0, 16).sin.data();
      const long = await tables.forPositions(16, 1).sin.data();
      expect([...short.slice(0, 32)]).toEqual([
        ...rotaryTablesOnHost({ dim: 4, theta: 1e4, scaling }, 16, { length: 16 }).sin,
      ]);
      expect([...long.slice(0, 34)]).toEqual([
        ...rotaryTablesOnHost({ dim: 4, theta: 1e4, scaling }, 17, { length: 17 }).sin,
      ]);
      expect(() => tables.tables(4)).toThrow(/use forPositions/);
    } finally {
      tables.dispose();
    }
    expect(backend.live).toBe(0);
  });
});

describe('RoPE scaling in configs', () => {
  it("resolves a scaling with transformers' defaults and names every bad field", () => {
    const config = resolveConfig({
      vocabSize: 8,
      hiddenSize: 32,
      numLayers: 1,
      numHeads: 2,
      rope: { scaling: { type: 'yarn', factor: 4, originalMaxPositions: 64 } },
    });
    expect(config.rope.scaling).toEqual({
      type: 'yarn',
      factor: 4,
      originalMaxPositions: 64,
      attentionFactor: 0.1 * Math.log(4) + 1,
      betaFast: 32,
      betaSlow: 1,
      truncate: true,
    });
    let error: ConfigError | undefined;
    try {
      resolveConfig({
        vocabSize: 8,
        hiddenSize: 32,
        numLayers: 1,
        numHeads: 2,
        rope: { scaling: { type: 'llama3', factor: -1, lowFreqFactor: 1, highFreqFactor: 4 } as never },
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.fields).toEqual(['rope.scaling.factor', 'rope.scaling.originalMaxPositions']);
    expect(() =>
      resolveConfig({
        vocabSize: 8,
        hiddenSize: 32,
        numLayers: 1,
        numHeads: 2,
        rope: { scaling: { type: 'ntk' } as never },
      }),
    ).toThrow(/rope.scaling.type: expected one of default, linear, dynamic, yarn, longrope, llama3, got "ntk"/);
  });

  it('a DiffLlama with a scaling exports it as rope_parameters and reads it back unchanged', () => {
    for (const scaling of [
      { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
      { rope_type: 'dynamic', factor: 2 },
      { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, beta_fast: 16 },
      {
        rope_type: 'longrope',
        short_factor: [1, 1],
        long_factor: [2, 3],
        original_max_position_embeddings: 64,
        factor: 4,
      },
    ]) {
      const json = {
        model_type: 'diffllama',
        vocab_size: 8,
        hidden_size: 16,
        intermediate_size: 8,
        num_hidden_layers: 1,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 4,
        max_position_embeddings: 256,
        rope_parameters: { rope_theta: 1e4, ...scaling },
      };
      const config = diffLlamaModelConfig(diffLlamaDims(json, 'c.json'), 'c.json');
      const exported = toDiffLlama(config, initParameters(config)).config;
      const again = diffLlamaModelConfig(diffLlamaDims(exported, 'c.json'), 'c.json');
      expect(again.rope).toEqual(config.rope);
    }
  });

  it('native config.json: a file written before scalings existed loads as plain RoPE; a scaling round-trips', async () => {
    const native = (config: Record<string, unknown>, resolved: ModelConfig) => {
      const weights = serializeSafetensors(
        [...parameterShapes(resolved)].map(([name, shape]) => [
          name,
          { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)), dtype: 'F32' as const },
        ]),
      );
      const text = JSON.stringify({ format: 'diff-transformer', version: 1, ...config });
      return memoryFolder({ 'config.json': new TextEncoder().encode(text), 'model.safetensors': weights }, 'm');
    };
    const sizes = { vocabSize: 8, hiddenSize: 16, numLayers: 1, numHeads: 2 };
    const old = { ...sizes, rope: { theta: 5e5, layout: 'half', precision: 'float64' } };
    const plainConfig = resolveConfig(old as never);
    expect((await readModelFolder(native(old, plainConfig))).config.rope.scaling).toEqual({ type: 'default' });
    const scaled = resolveConfig({
      ...sizes,
      rope: { scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 } },
    });
    const written = JSON.parse(JSON.stringify(scaled));
    expect((await readModelFolder(native(written, scaled))).config).toEqual(scaled);
  });
});
