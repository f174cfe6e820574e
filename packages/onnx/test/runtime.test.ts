/**
 * Every variant's export is a valid ONNX model: ONNX's checker accepts it (strict shape inference), it
 * holds exactly the tensors the exporter meant to write (read back by an independent protobuf parser),
 * and onnxruntime-node loads it with every graph optimisation on and runs it at dynamic batch, sequence
 * and past lengths. Numerical agreement with this project's model is train's test (onnx-export.test.ts).
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decoderInterface,
  encodeModel,
  EXTERNAL_DATA_FILE,
  INPUT_NAMES,
  IR_VERSION,
  MODEL_FILE,
  OnnxGraph,
  onnxExport,
  onnxModelBytes,
  OPSETS,
  OUTPUT_NAMES,
} from '@diff-transformer/onnx';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { VARIANTS, variant } from './models.js';
import { CHECK_AND_DESCRIBE, pythonWithOnnx, requirePythonOnnx, runPython } from './python-onnx.js';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-onnx-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function writeExport(dir: string, files: ReturnType<typeof onnxExport>['files']): void {
  for (const file of files) {
    writeFileSync(join(dir, file.name), Buffer.concat(file.chunks.map((c) => (typeof c === 'function' ? c() : c))));
  }
}

interface Description {
  ir_version: number;
  opsets: Record<string, number>;
  inputs: Record<string, (string | number)[]>;
  outputs: Record<string, (string | number)[]>;
  ops: string[];
  initializers: Record<string, [number, number[], number]>;
  external: number;
}

const int64 = (n: number, dims: number[], value: (i: number) => number) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from({ length: n }, (_, i) => BigInt(value(i))),
    dims,
  );

describe.skipIf(!pythonWithOnnx && !requirePythonOnnx)("ONNX's checker", () => {
  it('accepts every variant, float32 and float16, and reads back exactly the tensors written', () => {
    const cases = Object.keys(VARIANTS).flatMap((name) =>
      (['float32', 'float16'] as const).map((dtype) => {
        const { config, parameters } = variant(name);
        const dir = mkdtempSync(join(scratch, 'check-'));
        writeExport(dir, onnxExport(config, parameters, { dtype }).files);
        return { name, dtype, config, parameters, path: join(dir, MODEL_FILE) };
      }),
    );
    const docs = runPython(
      CHECK_AND_DESCRIBE,
      cases.map((c) => c.path),
    ) as Description[];
    cases.forEach(({ name, dtype, config, parameters }, i) => {
      const doc = docs[i];
      const what = `${name} ${dtype}`;
      const io = decoderInterface(config);
      expect(doc.ir_version, what).toBe(8);
      expect(doc.opsets, what).toEqual({ '': 17 });
      expect(doc.inputs[INPUT_NAMES.inputIds], what).toEqual(['batch_size', 'sequence_length']);
      expect(doc.inputs[INPUT_NAMES.pastKey(1)], what).toEqual([
        'batch_size',
        io.kvHeads,
        'past_sequence_length',
        io.headSize,
      ]);
      expect(doc.outputs[OUTPUT_NAMES.presentValue(1)], what).toEqual([
        'batch_size',
        io.kvHeads,
        'total_sequence_length',
        io.headSize,
      ]);
      expect(doc.outputs[OUTPUT_NAMES.logits], what).toEqual(['batch_size', 'sequence_length', config.vocabSize]);
      // Each parameter as written: its sum (float16 matrices rounded), dims transposed for MatMul.
      const down = parameters.get('layers.1.ffn.down_proj.weight')!;
      const [type, dims, sum] = doc.initializers['layers.1.ffn.down_proj.MatMul.weight'];
      expect([type, dims], what).toEqual([dtype === 'float32' ? 1 : 10, [down.shape[1], down.shape[0]]]);
      expect(Math.abs(sum - down.data.reduce((a, b) => a + b, 0)), what).toBeLessThan(
        dtype === 'float32' ? 1e-4 : 1e-2,
      );
      const norm = parameters.get('norm.weight')!;
      expect(doc.initializers['norm.weight'][2], what).toBeCloseTo(
        norm.data.reduce((a, b) => a + b, 0),
        4,
      );
    });
  });

  it('accepts an export with its weights in external data, holding the same values', () => {
    const { config, parameters } = variant('v1 mha interleaved');
    const [inline, external] = [false, true].map((externalData) => {
      const dir = mkdtempSync(join(scratch, 'external-'));
      const exported = onnxExport(config, parameters, { externalData });
      writeExport(dir, exported.files);
      expect(exported.externalData).toBe(externalData);
      return { dir, path: join(dir, MODEL_FILE) };
    });
    const [inlineDoc, externalDoc] = runPython(CHECK_AND_DESCRIBE, [inline.path, external.path]) as Description[];
    expect(readdirSync(external.dir).sort()).toEqual(['genai_config.json', MODEL_FILE, EXTERNAL_DATA_FILE]);
    expect(externalDoc.external).toBeGreaterThan(config.numLayers * 7);
    expect(inlineDoc.external).toBe(0);
    expect(externalDoc.initializers).toEqual(inlineDoc.initializers);
    expect(statSync(join(external.dir, MODEL_FILE)).size).toBeLessThan(statSync(join(inline.dir, MODEL_FILE)).size / 2);
  });

  it('fails a graph broken on purpose (a node reading a value nothing defines)', () => {
    const g = new OnnxGraph('broken');
    const x = g.input('x', 'float32', [2]);
    g.node('Add', [x, 'nowhere'], {}, { outputs: ['y'] });
    g.output('y', 'float32', [2]);
    const path = join(scratch, 'broken.onnx');
    const { model } = encodeModel(g, {
      irVersion: IR_VERSION,
      opsets: OPSETS,
      producerName: 'test',
      producerVersion: '0',
    });
    writeFileSync(path, Buffer.concat(model.map((c) => (c instanceof Uint8Array ? c : c.produce()))));
    expect(() => runPython(CHECK_AND_DESCRIBE, [path])).toThrow(/nowhere/);
  });
});

describe('onnxruntime-node', () => {
  it('loads every variant with all graph optimisations and runs dynamic batch, sequence and past lengths', async () => {
    for (const name of Object.keys(VARIANTS)) {
      const { config, parameters } = variant(name);
      const io = decoderInterface(config);
      const optimized = join(scratch, `${name.replace(/\W+/g, '-')}.optimized.onnx`);
      const session = await ort.InferenceSession.create(onnxModelBytes(config, parameters), {
        graphOptimizationLevel: 'all',
        optimizedModelFilePath: optimized,
        intraOpNumThreads: 1,
      });
      try {
        let past: Record<string, ort.Tensor> = {};
        for (let i = 0; i < io.layers; i++) {
          const empty = () => new ort.Tensor('float32', new Float32Array(0), [2, io.kvHeads, 0, io.headSize]);
          past[INPUT_NAMES.pastKey(i)] = empty();
          past[INPUT_NAMES.pastValue(i)] = empty();
        }
        let length = 0;
        for (const t of [3, 1, 2]) {
          const out = await session.run({
            ...past,
            [INPUT_NAMES.inputIds]: int64(2 * t, [2, t], (i) => (i * 7) % config.vocabSize),
            [INPUT_NAMES.attentionMask]: int64(2 * (length + t), [2, length + t], () => 1),
            [INPUT_NAMES.positionIds]: int64(2 * t, [2, t], (i) => length + (i % t)),
          });
          length += t;
          expect(out[OUTPUT_NAMES.logits].dims, name).toEqual([2, t, config.vocabSize]);
          expect(out[OUTPUT_NAMES.presentKey(1)].dims, name).toEqual([2, io.kvHeads, length, io.headSize]);
          expect((out[OUTPUT_NAMES.logits].data as Float32Array).every(Number.isFinite), name).toBe(true);
          past = {};
          for (let i = 0; i < io.layers; i++) {
            past[INPUT_NAMES.pastKey(i)] = out[OUTPUT_NAMES.presentKey(i)];
            past[INPUT_NAMES.pastValue(i)] = out[OUTPUT_NAMES.presentValue(i)];
          }
        }
        expect(statSync(optimized).size, name).toBeGreaterThan(0);
      } finally {
        await session.release();
      }
    }
  });

  it('refuses a position past the rotary tables with its own error, not a wrong answer', async () => {
    const { config, parameters } = variant('baseline gqa');
    const io = decoderInterface(config, 8);
    const session = await ort.InferenceSession.create(onnxModelBytes(config, parameters, { maxPositions: 8 }));
    const feeds: Record<string, ort.Tensor> = {
      [INPUT_NAMES.inputIds]: int64(1, [1, 1], () => 1),
      [INPUT_NAMES.attentionMask]: int64(1, [1, 1], () => 1),
      [INPUT_NAMES.positionIds]: int64(1, [1, 1], () => 8),
    };
    for (let i = 0; i < io.layers; i++) {
      feeds[INPUT_NAMES.pastKey(i)] = new ort.Tensor('float32', new Float32Array(0), [1, io.kvHeads, 0, io.headSize]);
      feeds[INPUT_NAMES.pastValue(i)] = feeds[INPUT_NAMES.pastKey(i)];
    }
    await expect(session.run(feeds)).rejects.toThrow(/indices element out of data bounds|out of bounds/i);
    await session.release();
  });
});
