#!/usr/bin/env node
/**
 * The CPU backend against onnxruntime-node (its CPU execution provider, MLAS) on the same
 * computations, in interleaved rounds: in each round, for each workload, onnxruntime runs it
 * `--runs` times (median), then `difftx bench` runs the same op as many times in a child process
 * (its own median), so both see the same machine load; the ratio onnxruntime ms / difftx ms is taken
 * per round (above 1: difftx is faster) and reported as its median and min–max over the rounds.
 *
 * The ONNX graphs are built in code (scripts/peer/models.mjs: no downloads), each the op difftx
 * times: matmul (B a constant, which onnxruntime pre-packs), causal attention (opset-23 Attention),
 * differential attention (the same operator for both maps, then A₁ − λ·A₂ and the per-head RMSNorm),
 * and the ~21M-parameter bench model's forward pass and one decoding step against a KV cache.
 * onnxruntime-node is a devDependency of this package only.
 *
 *   pnpm build
 *   node packages/backend-cpu/scripts/bench-vs-onnxruntime.mjs                 # everything, 5 rounds
 *   node packages/backend-cpu/scripts/bench-vs-onnxruntime.mjs --only forward,decode --rounds 9
 *   node packages/backend-cpu/scripts/bench-vs-onnxruntime.mjs --difftx-arg=--engine --difftx-arg=wasm-simd128
 *
 * Options: --rounds N (5), --runs N per side per round (5), --threads N (every CPU), --only a,b (workload
 * names as printed), --difftx-arg=A (passed on to difftx bench, repeatable), --json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { attentionModel, benchModel, BENCH_MODEL, diffAttentionModel, matmulModel } from './peer/models.mjs';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const difftx = join(packageRoot, '..', '..', 'apps', 'cli', 'dist', 'difftx.js');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '5' },
    threads: { type: 'string', default: String(availableParallelism()) },
    only: { type: 'string' },
    'difftx-arg': { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const runs = Number(values.runs);
const threads = Number(values.threads);
if (!existsSync(difftx)) {
  console.error(`bench-vs-onnxruntime: ${difftx} is missing; run pnpm build first`);
  process.exit(1);
}
let ort;
try {
  ort = createRequire(import.meta.url)('onnxruntime-node');
} catch (error) {
  console.error(`bench-vs-onnxruntime: onnxruntime-node does not load (${error.message}); run pnpm install`);
  process.exit(1);
}

const floats = (shape) => {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = Math.sin(i * 12.9898) * 0.5;
  return new ort.Tensor('float32', data, shape);
};
const int64 = (values, shape) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), shape);

/** Each workload: its difftx op and shape, the ONNX model and its inputs. */
function workloads() {
  const { heads, headDim: d } = BENCH_MODEL;
  const list = [];
  for (const n of [1024, 2048]) {
    list.push({
      name: `matmul ${n}³`,
      op: 'matmul',
      shape: `${n}x${n}x${n}`,
      model: () => matmulModel(n, n, n),
      feeds: () => ({ a: floats([n, n]) }),
    });
  }
  for (const t of [1024, 4096]) {
    // difftx's attention op runs 2H heads of width d for --shape B,T,H,d.
    list.push({
      name: `attention T=${t}`,
      op: 'attention',
      shape: `1,${t},4,64`,
      model: () => attentionModel(t, 8, 64),
      feeds: () => ({ q: floats([1, t, 512]), k: floats([1, t, 512]), v: floats([1, t, 512]) }),
    });
    list.push({
      name: `diff-attention T=${t}`,
      op: 'diff-attention',
      shape: `1,${t},4,64`,
      model: () => diffAttentionModel(t, 4, 64),
      feeds: () => ({ q: floats([1, t, 512]), k: floats([1, t, 512]), v: floats([1, t, 512]) }),
    });
  }
  const t = 256;
  list.push({
    name: `forward T=${t}`,
    op: 'forward',
    shape: `1,${t}`,
    model: () => benchModel(t),
    feeds: () => ({
      ids: int64(
        Array.from({ length: t }, (_, i) => (i * 7919) % 8192),
        [1, t],
      ),
      positions: int64(
        Array.from({ length: t }, (_, i) => i),
        [1, t],
      ),
    }),
  });
  list.push({
    name: `decode at T=${t}`,
    op: 'decode',
    shape: `1,${t}`,
    model: () => benchModel(1, t),
    feeds: () => {
      const feeds = { ids: int64([17], [1, 1]), positions: int64([t], [1, 1]) };
      for (let layer = 0; layer < 4; layer++) {
        feeds[`past_key_${layer}`] = floats([1, 2 * heads, t, d]);
        feeds[`past_value_${layer}`] = floats([1, 2 * heads, t, 2 * d]);
      }
      return feeds;
    },
  });
  const only = values.only?.split(',').map((s) => s.trim());
  return only ? list.filter((w) => only.some((o) => w.name.startsWith(o))) : list;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timeOrt(session, feeds) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await session.run(feeds);
    times.push(performance.now() - start);
  }
  return median(times);
}

function timeDifftx(workload) {
  const args = [difftx, 'bench', '--backend', 'cpu', '--op', workload.op, '--shape', workload.shape];
  args.push('--runs', String(runs), '--threads', String(threads), ...values['difftx-arg'], '--json');
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (run.status !== 0) throw new Error(`difftx ${args.slice(1).join(' ')} failed:\n${run.stderr}`);
  const document = JSON.parse(run.stdout);
  return { ms: document.results[0].medianMs, device: document.device, command: `node ${args.join(' ')}` };
}

const options = {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
};
const loadBefore = loadavg()[0];
const results = [];
let device = '';
for (const workload of workloads()) {
  const session = await ort.InferenceSession.create(workload.model(), options);
  const feeds = workload.feeds();
  await session.run(feeds); // warm-up: pre-packing, allocations
  const ortMs = [];
  const oursMs = [];
  let command = '';
  for (let round = 0; round < rounds; round++) {
    ortMs.push(await timeOrt(session, feeds));
    const ours = timeDifftx(workload);
    oursMs.push(ours.ms);
    device = ours.device;
    command = ours.command;
  }
  await session.release();
  const ratios = ortMs.map((o, i) => o / oursMs[i]);
  const result = {
    workload: workload.name,
    difftxMs: round3(median(oursMs)),
    onnxruntimeMs: round3(median(ortMs)),
    ratio: round3(median(ratios)),
    ratioMin: round3(Math.min(...ratios)),
    ratioMax: round3(Math.max(...ratios)),
    command,
  };
  results.push(result);
  if (!values.json) {
    console.log(
      `${result.workload.padEnd(22)} difftx ${fmt(result.difftxMs)} ms  onnxruntime ${fmt(result.onnxruntimeMs)} ms  ` +
        `ratio ${result.ratio.toFixed(2)} (${result.ratioMin.toFixed(2)}–${result.ratioMax.toFixed(2)})`,
    );
  }
}
const summary = {
  difftx: device,
  onnxruntime: `onnxruntime-node ${ort.env.versions?.node ?? ''}, CPU execution provider, ${threads} intra-op threads`,
  rounds,
  runs,
  loadAverage: { before: round3(loadBefore), after: round3(loadavg()[0]) },
  results,
};
if (values.json) console.log(JSON.stringify(summary, null, 2));
else {
  console.log(`difftx: ${summary.difftx}; ${summary.onnxruntime}`);
  console.log(
    `ratio = onnxruntime ms / difftx ms per round (above 1: difftx faster), median (min–max) of ${rounds} rounds ` +
      `of ${runs} runs each; load average ${summary.loadAverage.before} before, ${summary.loadAverage.after} after`,
  );
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

function fmt(ms) {
  return ms.toFixed(ms < 10 ? 2 : 1).padStart(7);
}
