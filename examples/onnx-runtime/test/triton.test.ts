/**
 * triton/make-repository.mjs: the repository it lays out holds the graph, and its config.pbtxt
 * declares exactly the graph's inputs and outputs, with their types and dims, as onnxruntime reads
 * them from model.onnx. (Triton itself is not run here.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initParameters, resolveConfig } from '@diff-transformer/core';
import { onnxExport } from '@diff-transformer/onnx';
import * as ort from 'onnxruntime-node';
import { afterAll, expect, it } from 'vitest';
import { writeExport } from './write-export.js';

const scratch = mkdtempSync(join(tmpdir(), 'difftx-triton-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

it('config.pbtxt names every input and output of the graph, with its type and dims', async () => {
  const config = resolveConfig({ vocabSize: 96, hiddenSize: 32, numLayers: 3, numHeads: 2, numKvHeads: 1 });
  const out = join(scratch, 'export');
  writeExport(out, onnxExport(config, initParameters(config, { seed: 1 }), { externalData: true }).files);
  const repository = join(scratch, 'repository');
  const script = fileURLToPath(new URL('../triton/make-repository.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, out, repository, 'diff'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(existsSync(join(repository, 'diff', '1', 'model.onnx'))).toBe(true);
  expect(existsSync(join(repository, 'diff', '1', 'model.onnx.data'))).toBe(true);
  const pbtxt = readFileSync(join(repository, 'diff', 'config.pbtxt'), 'utf8');
  expect(pbtxt).toMatch(/^name: "diff"\nbackend: "onnxruntime"\nmax_batch_size: 0\n/);
  const declared = (section: string) =>
    [
      ...pbtxt
        .split(`${section} [`)[1]
        .split('\n]')[0]
        .matchAll(/name: "([^"]+)"\s+data_type: (\w+)\s+dims: \[ ([^\]]*) \]/g),
    ].map((m) => ({ name: m[1], type: m[2], dims: m[3].split(', ').map(Number) }));
  const session = await ort.InferenceSession.create(join(out, 'model.onnx'));
  try {
    // onnxruntime's view of the graph: names in order, and (through ONNX's value infos) their types.
    expect(declared('input').map((t) => t.name)).toEqual(session.inputNames);
    expect(declared('output').map((t) => t.name)).toEqual(session.outputNames);
    const meta = new Map([...session.inputMetadata, ...session.outputMetadata].map((m) => [m.name, m]));
    for (const t of [...declared('input'), ...declared('output')]) {
      const m = meta.get(t.name)!;
      if (!m.isTensor) throw new Error(`${t.name} is not a tensor`);
      expect(t.type, t.name).toBe(m.type === 'int64' ? 'TYPE_INT64' : 'TYPE_FP32');
      expect(t.dims, t.name).toEqual(m.shape.map((d) => (typeof d === 'number' ? d : -1)));
    }
  } finally {
    await session.release();
  }
});
