/**
 * The part of the training road that runs without PyTorch: a model trained here, exported as a
 * DiffLlama folder (what continue_training.py reads and, continued, writes back in the same layout),
 * loaded back with the same logits, and exported from there to ONNX with the same logits again on
 * onnxruntime-node. The script itself is only compiled (its syntax); the GPU step has not run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffTransformer, errorStats, setBackend, tidy } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { loadModel } from '@diff-transformer/core/node';
import { decoderInterface, INPUT_NAMES, OUTPUT_NAMES } from '@diff-transformer/onnx';
import { splitDocuments, tokenizeSplit, Trainer } from '@diff-transformer/train';
import { EXPORT_TOLERANCE, exportModel, saveCheckpoint } from '@diff-transformer/train/node';
import * as ort from 'onnxruntime-node';
import { afterAll, expect, it } from 'vitest';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-road-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function logitsOf(model: DiffTransformer, ids: number[]): Promise<Float32Array> {
  const out = tidy(() => model.forward([ids]));
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

it('train here → DiffLlama folder → load back → ONNX: the same logits at every stop', async () => {
  const backend = await setBackend('cpu');
  const text = 'The committee will meet again on Friday to discuss the budget.\n'.repeat(200);
  const data = tokenizeSplit(splitDocuments([{ name: 'notes.txt', text }]));
  // DiffLlama's layout: half rotary, per-head norm without weight (what transformers' class holds).
  const model = DiffTransformer.create(
    {
      vocabSize: 256,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 2,
      numKvHeads: 1,
      maxPositions: 128,
      rope: { layout: 'half', precision: 'float32' },
      subLayerNorm: { affine: false },
    },
    { seed: 3 },
  );
  const trainer = new Trainer(model, data, { steps: 4, batchSize: 4, seqLen: 32, learningRate: 3e-3, warmupSteps: 1 });
  await trainer.train();
  const checkpoint = join(scratch, 'trained');
  await saveCheckpoint(trainer, checkpoint);

  const hf = join(scratch, 'hf');
  const exported = await exportModel(checkpoint, hf, { format: 'diffllama', verifyOn: backend });
  expect(exported.nmse).toBeLessThanOrEqual(EXPORT_TOLERANCE);
  expect(JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8')).architectures).toEqual(['DiffLlamaForCausalLM']);

  const ids = Array.from(new TextEncoder().encode('The committee will meet'));
  const trained = await logitsOf(model, ids);
  const loaded = await loadModel(hf);
  expect(errorStats(await logitsOf(loaded, ids), trained).nmse).toBeLessThanOrEqual(EXPORT_TOLERANCE);

  const onnxDir = join(scratch, 'onnx');
  await exportModel(hf, onnxDir, { format: 'onnx' });
  const session = await ort.InferenceSession.create(join(onnxDir, 'model.onnx'));
  const io = decoderInterface(loaded.config);
  const int64 = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, values.length]);
  const feeds: Record<string, ort.Tensor> = {
    [INPUT_NAMES.inputIds]: int64(ids),
    [INPUT_NAMES.attentionMask]: int64(ids.map(() => 1)),
    [INPUT_NAMES.positionIds]: int64(ids.map((_, i) => i)),
  };
  for (let i = 0; i < io.layers; i++) {
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, io.kvHeads, 0, io.headSize]);
    feeds[INPUT_NAMES.pastKey(i)] = empty;
    feeds[INPUT_NAMES.pastValue(i)] = empty;
  }
  const onnxLogits = (await session.run(feeds))[OUTPUT_NAMES.logits].data as Float32Array;
  expect(errorStats(onnxLogits, trained).nmse).toBeLessThanOrEqual(1e-10);
  await session.release();
  trainer.dispose();
  loaded.dispose();
  model.dispose();
});

it('continue_training.py compiles (its syntax; running it needs PyTorch on GPUs)', () => {
  const script = fileURLToPath(new URL('../continue_training.py', import.meta.url));
  const source = readFileSync(script, 'utf8');
  const r = spawnSync('python3', ['-c', 'import sys; compile(sys.stdin.read(), "continue_training.py", "exec")'], {
    input: source,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
});
