/**
 * serve-node.mjs, run as a user runs it on an export: the ids it streams are difftx's greedy ids for
 * the same prompt, and what it prints is their text.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffTransformer, generate, setBackend } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { saveModel } from '@diff-transformer/core/node';
import { exportModel } from '@diff-transformer/train/node';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, expect, it } from 'vitest';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-serve-node-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

it('streams difftx generate’s greedy continuation from the ONNX export', async () => {
  await setBackend('cpu');
  const model = DiffTransformer.create(
    { vocabSize: 256, hiddenSize: 64, numLayers: 2, numHeads: 2, maxPositions: 128 },
    { seed: 11, std: 0.2 },
  );
  const dir = join(scratch, 'model');
  const out = join(scratch, 'onnx');
  await saveModel(model, dir);
  await exportModel(dir, out, { format: 'onnx' });
  const script = fileURLToPath(new URL('../serve-node.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, out, 'Hello, ', '32'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const { ids } = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
  const prompt = Array.from(new TextEncoder().encode('Hello, ')); // the byte-level tokenizer's ids
  const expected: number[] = [];
  for await (const id of generate(model, prompt, { maxNewTokens: 32, greedy: true })) expected.push(id);
  expect(ids).toEqual(expected);
  const read = (file: string) => JSON.parse(readFileSync(join(out, file), 'utf8'));
  const tokenizer = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
  expect(tokenizer.encode('Hello, ').ids).toEqual(prompt);
  const text = tokenizer.decode(ids, { skip_special_tokens: true });
  expect(text.startsWith(r.stdout)).toBe(true);
  expect(r.stdout.length).toBeGreaterThan(text.length - 4);
  model.dispose();
});
