/**
 * A tiny Hugging Face DiffLlama repository to serve: config.json and safetensors written by core's
 * saveDiffLlama from random weights (one file, or shards with their index), the fixture BPE tokenizer
 * (vocabulary 268) and a generation_config.json, as a real repository holds them.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initParameters, resolveConfig } from '@diff-transformer/core';
import { saveDiffLlama } from '@diff-transformer/core/node';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/tokenizer/', import.meta.url));

/** The files of the repository, by name. `maxShardBytes` small enough gives several shards. */
export async function tinyDiffLlamaFiles(
  options: { maxShardBytes?: number } = {},
): Promise<Record<string, Uint8Array>> {
  const config = resolveConfig({
    vocabSize: 268,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 1,
    rope: { layout: 'half', precision: 'float32' },
    subLayerNorm: { affine: false },
  });
  const dir = mkdtempSync(join(tmpdir(), 'fake-hub-model-'));
  try {
    await saveDiffLlama(config, initParameters(config, { seed: 7, std: 0.2 }), dir, {
      maxShardBytes: options.maxShardBytes ?? Number.POSITIVE_INFINITY,
    });
    const files: Record<string, Uint8Array> = {};
    for (const name of readdirSync(dir)) files[name] = readFileSync(join(dir, name));
    for (const name of ['tokenizer.json', 'tokenizer_config.json']) files[name] = readFileSync(join(FIXTURES, name));
    files['generation_config.json'] = new TextEncoder().encode(
      `${JSON.stringify({ _from_model_config: true, eos_token_id: 267, transformers_version: '4.57.0' })}\n`,
    );
    return files;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
