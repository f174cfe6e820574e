#!/usr/bin/env node
/**
 * onnxruntime-node running a difftx ONNX export against difftx's own CPU backend on the same model
 * (same random weights, same threads): a prefill of T tokens (logits of every position) and one
 * decoding step against a KV cache of T tokens. Interleaved rounds: in each round each side runs each
 * workload `--runs` times (its median), so both see the same machine load; the ratio onnxruntime ms /
 * difftx ms is taken per round (above 1: difftx is faster) and reported as its median and min–max.
 *
 *   pnpm build
 *   node examples/onnx-runtime/bench.mjs                       # the ~21M bench model, T = 256
 *   node examples/onnx-runtime/bench.mjs --model 1b --rounds 3 # the 1.24B shape (hidden 2048, vocab 128256)
 *   node examples/onnx-runtime/bench.mjs --model 1b --layers 5 # that shape with fewer layers (less memory)
 *
 * Options: --model bench|1b, --layers N (the model's own by default), --attention
 * differential|differential-v2|standard, --t N (256), --rounds N (5), --runs N (5), --threads N (every
 * CPU), --json. Memory: about three copies of the weights (host, difftx, onnxruntime) at the peak.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCpuBackend } from '@diff-transformer/backend-cpu';
import { DiffTransformer, initParameters, resolveConfig } from '@diff-transformer/core';
import { INPUT_NAMES, OUTPUT_NAMES, onnxExport } from '@diff-transformer/onnx';
import * as ort from 'onnxruntime-node';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'bench' },
    layers: { type: 'string' },
    attention: { type: 'string', default: 'differential' },
    t: { type: 'string', default: '256' },
    rounds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '5' },
    threads: { type: 'string', default: String(availableParallelism()) },
    json: { type: 'boolean', default: false },
  },
});
const [t, rounds, runs, threads] = ['t', 'rounds', 'runs', 'threads'].map((k) => Number(values[k]));
const differential = values.attention === 'differential';
const MODELS = {
  // difftx bench's forward/decode model (~21M parameters).
  bench: { vocabSize: 8192, hiddenSize: 512, numLayers: 4, numHeads: differential ? 4 : 8, intermediateSize: 1408 },
  // The released 1.24B checkpoints' shape (Llama 3.2 1B's, as DiffLlama): 16 layers, GQA 4:1, tied.
  '1b': {
    vocabSize: 128256,
    hiddenSize: 2048,
    numLayers: 16,
    numHeads: differential ? 16 : 32,
    numKvHeads: differential ? 4 : 8,
    intermediateSize: 8192,
    tieWordEmbeddings: true,
  },
};
const config = resolveConfig({
  ...MODELS[values.model],
  attention: values.attention,
  maxPositions: Math.max(512, 2 * t),
});
const log = (line) => values.json || console.error(line);

log(`model ${values.model} (${values.attention}), T = ${t}, ${threads} threads; exporting…`);
let parameters = initParameters(config, { seed: 1 });
const dir = mkdtempSync(join(tmpdir(), 'difftx-onnx-bench-'));
let exported = onnxExport(config, parameters, {});
const io = exported.io;
for (const file of exported.files) {
  const fd = openSync(join(dir, file.name), 'w');
  for (const chunk of file.chunks) writeSync(fd, typeof chunk === 'function' ? chunk() : chunk); // one tensor at a time
  closeSync(fd);
}
const externalData = exported.externalData;
const backend = await createCpuBackend({ threads });
const model = DiffTransformer.fromParameters(config, parameters, { backend });
// The backend holds its copy; the host one (which the export's chunks reach too) can go.
parameters = null;
exported = null;
const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
  executionProviders: ['cpu'],
  graphOptimizationLevel: 'all',
  intraOpNumThreads: threads,
});
rmSync(dir, { recursive: true, force: true });

const ids = Array.from({ length: t }, (_, i) => (i * 7919 + 13) % config.vocabSize);
const int64 = (v, dims) => new ort.Tensor('int64', BigInt64Array.from(v, BigInt), dims);
const emptyPast = {};
for (let i = 0; i < io.layers; i++)
  for (const name of [INPUT_NAMES.pastKey(i), INPUT_NAMES.pastValue(i)])
    emptyPast[name] = new ort.Tensor('float32', new Float32Array(0), [1, io.kvHeads, 0, io.headSize]);
const prefillFeeds = {
  ...emptyPast,
  [INPUT_NAMES.inputIds]: int64(ids, [1, t]),
  [INPUT_NAMES.attentionMask]: int64(
    ids.map(() => 1),
    [1, t],
  ),
  [INPUT_NAMES.positionIds]: int64(
    ids.map((_, i) => i),
    [1, t],
  ),
};
const prefilled = await session.run(prefillFeeds);
const decodeFeeds = {
  [INPUT_NAMES.inputIds]: int64([ids[0]], [1, 1]),
  [INPUT_NAMES.attentionMask]: int64(new Array(t + 1).fill(1), [1, t + 1]),
  [INPUT_NAMES.positionIds]: int64([t], [1, 1]),
};
for (let i = 0; i < io.layers; i++) {
  decodeFeeds[INPUT_NAMES.pastKey(i)] = prefilled[OUTPUT_NAMES.presentKey(i)];
  decodeFeeds[INPUT_NAMES.pastValue(i)] = prefilled[OUTPUT_NAMES.presentValue(i)];
}
const cache = model.createCache(1, t + 1);
model.forward([ids], { cache }).dispose();

const workloads = {
  [`prefill T=${t}`]: {
    onnxruntime: () => session.run(prefillFeeds),
    difftx: async () => {
      const out = model.forward([ids]);
      await out.data();
      out.dispose();
    },
  },
  [`decode at ${t}`]: {
    onnxruntime: () => session.run(decodeFeeds),
    difftx: async () => {
      cache.length = t;
      const out = model.forward([[ids[0]]], { cache, lastTokenOnly: true });
      await out.data();
      out.dispose();
    },
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function time(fn) {
  await fn(); // warm-up
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    ms.push(performance.now() - start);
  }
  return median(ms);
}

const results = Object.fromEntries(Object.keys(workloads).map((w) => [w, { onnxruntime: [], difftx: [], ratio: [] }]));
const loadBefore = loadavg()[0];
for (let round = 0; round < rounds; round++) {
  for (const [name, sides] of Object.entries(workloads)) {
    const ortMs = await time(sides.onnxruntime);
    const ourMs = await time(sides.difftx);
    const r = results[name];
    r.onnxruntime.push(ortMs);
    r.difftx.push(ourMs);
    r.ratio.push(ortMs / ourMs);
    log(`round ${round + 1} ${name}: onnxruntime ${ortMs.toFixed(2)} ms, difftx ${ourMs.toFixed(2)} ms`);
  }
}
const loadAfter = loadavg()[0];
const summary = Object.entries(results).map(([name, r]) => ({
  workload: name,
  onnxruntimeMs: median(r.onnxruntime),
  difftxMs: median(r.difftx),
  ratio: median(r.ratio),
  ratioMin: Math.min(...r.ratio),
  ratioMax: Math.max(...r.ratio),
}));
const doc = {
  model: values.model,
  layers: config.numLayers,
  attention: values.attention,
  externalData,
  parameters: [...model.parameters.values()].reduce((n, p) => n + p.size, 0),
  t,
  threads,
  rounds,
  runs,
  engine: backend.engineReason ?? null,
  onnxruntime: ort.env.versions?.node ?? '1.30.0',
  load: { before: loadBefore, after: loadAfter },
  results: summary,
};
if (values.json) console.log(JSON.stringify(doc, null, 2));
else {
  console.log(`| workload | onnxruntime ms | difftx ms | ratio (min–max) |\n| --- | --- | --- | --- |`);
  for (const s of summary)
    console.log(
      `| ${s.workload} | ${s.onnxruntimeMs.toFixed(2)} | ${s.difftxMs.toFixed(2)} | ${s.ratio.toFixed(2)} (${s.ratioMin.toFixed(2)}–${s.ratioMax.toFixed(2)}) |`,
    );
  console.log(`load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}; ${doc.parameters} parameters`);
}
cache.dispose();
model.dispose();
await session.release();
backend.dispose?.();
