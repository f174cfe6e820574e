/**
 * difftx train, eval and export, run as a user runs them: exact resume across processes, saves that
 * survive a kill at any moment, the export round trip and its refusals, and bad input answered with one
 * line and nothing written.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setBackend } from '@diff-transformer/core';
import { loadModel } from '@diff-transformer/core/node';
import { loadCheckpoint } from '@diff-transformer/train/node';
import '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'difftx-train-'));
const text = join(scratch, 'text.txt');
const preset = join(scratch, 'micro.json');

function difftx(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLineError(r: ReturnType<typeof difftx>, code: number, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines[lines.length - 1], r.stderr).toMatch(/^difftx: /);
  expect(r.stderr.split('\n').filter((l) => l.startsWith('difftx:'))).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

type Record = { type: string; step?: number; loss?: number };
const records = (stdout: string): Record[] =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record);
const stepLosses = (dir: string) =>
  readFileSync(join(dir, 'train-log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record)
    .filter((r) => r.type === 'step')
    .map((r) => [r.step, r.loss]);

/** The step of the checkpoint in dir, or -1 while there is none (or it is being swapped). */
function savedStep(dir: string): number {
  try {
    return JSON.parse(readFileSync(join(dir, 'trainer-state.json'), 'utf8')).step;
  } catch {
    return -1;
  }
}

/** A micro model and run, so hundreds of steps take seconds on the CPU backend. */
const training = (steps: number) => ({
  steps,
  batchSize: 4,
  seqLen: 32,
  learningRate: 0.01,
  warmupSteps: 10,
  evalEvery: 50,
  evalTokens: 512,
});

beforeAll(async () => {
  await setBackend('cpu');
  const sentences = [
    'The jury said the election was conducted well.',
    'A quick brown fox jumps over the lazy dog near the river bank.',
    'She read the letter twice before she put it back in the drawer.',
    'They walked along the road until the lights of the city appeared.',
  ];
  writeFileSync(text, Array.from({ length: 400 }, (_, i) => sentences[(i * 7) % 4]).join('\n'));
  writeFileSync(
    preset,
    JSON.stringify({ model: { hiddenSize: 32, numLayers: 2, numHeads: 2, maxPositions: 64 }, training: training(200) }),
  );
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('difftx train', () => {
  it('200 steps in one go and 100 + 100 resumed give bit-identical losses, weights and moments', () => {
    const straight = join(scratch, 'straight');
    const paused = join(scratch, 'paused');
    const base = ['train', '--data', text, '--size', preset, '--backend', 'cpu', '--json'];
    const one = difftx(...base, '--out', straight);
    expect(one.code, one.stderr).toBe(0);
    const first = difftx(...base, '--out', paused, '--stop-at', '100');
    expect(first.code, first.stderr).toBe(0);
    expect(records(first.stdout).at(-1)).toMatchObject({ type: 'stopped', step: 100, steps: 200 });
    const second = difftx('train', '--out', paused, '--resume', '--backend', 'cpu', '--json');
    expect(second.code, second.stderr).toBe(0);
    const log = records(second.stdout);
    expect(log[0]).toMatchObject({ type: 'resume', step: 100 });
    expect(log.at(-1)).toMatchObject({ type: 'done', step: 200 });

    const losses = stepLosses(straight);
    expect(losses).toHaveLength(200);
    expect(stepLosses(paused)).toEqual(losses);
    for (const file of ['model.safetensors', 'optimizer.safetensors']) {
      expect(readFileSync(join(paused, file)).equals(readFileSync(join(straight, file))), file).toBe(true);
    }
    // It learned: the last steps' loss is well below the first's.
    expect(losses[199][1]!).toBeLessThan(losses[0][1]! - 2);
    expect(readdirSync(straight).sort()).toEqual([
      'config.json',
      'loss-curve.svg',
      'model.safetensors',
      'optimizer.safetensors',
      'train-log.jsonl',
      'trainer-state.json',
    ]);
    expect(readFileSync(join(straight, 'loss-curve.svg'), 'utf8')).toMatch(/^<svg[\s\S]*>validation<[\s\S]*<\/svg>$/);
  });

  it('DIR is a model folder that generate, inspect and eval accept', () => {
    const dir = join(scratch, 'straight');
    const generated = difftx('generate', '--model', dir, '--prompt', 'The jury', '--max-new-tokens', '8', '--json');
    expect(generated.code, generated.stderr).toBe(0);
    expect(JSON.parse(generated.stdout).ids).toHaveLength(8);
    const inspected = difftx('inspect', dir, '--json');
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ layout: 'native' });
    const evaluated = difftx('eval', '--model', dir, '--backend', 'cpu', '--json');
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const doc = JSON.parse(evaluated.stdout);
    expect(doc).toMatchObject({ data: text, split: 'validation', seqLen: 32 });
    expect(doc.bitsPerByte).toBeCloseTo(doc.loss / Math.LN2, 10);
    expect(doc.perplexity).toBeCloseTo(Math.exp(doc.loss), 8);
    expect(doc.bitsPerByte).toBeLessThan(4);
    expect(difftx('eval', '--model', dir).stdout).toMatch(/bits\/byte, perplexity/);
  });

  it('a kill at any moment leaves the last checkpoint loadable, and the run resumes from it', async () => {
    const dir = join(scratch, 'killed');
    const fresh = ['--data', text, '--size', preset, '--steps', '100000'];
    let resumed = false;
    let lastStep = -1;
    for (let round = 0; round < 6; round++) {
      const child = spawn(
        process.execPath,
        [CLI, 'train', '--out', dir, '--backend', 'cpu', '--save-every', '1', ...(resumed ? ['--resume'] : fresh)],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      const exited = new Promise((r) => child.once('exit', r));
      // Once it has saved a step past the last checkpoint, kill it without warning at a moment that varies.
      const start = Date.now();
      while (savedStep(dir) <= lastStep && child.exitCode === null && Date.now() - start < 60_000)
        await new Promise((r) => setTimeout(r, 10));
      expect(child.exitCode, stderr).toBe(null);
      await new Promise((r) => setTimeout(r, 20 + round * 37));
      child.kill('SIGKILL');
      await exited;
      const checkpoint = await loadCheckpoint(dir);
      expect(checkpoint.state.step).toBeGreaterThanOrEqual(lastStep);
      lastStep = checkpoint.state.step;
      checkpoint.model.dispose();
      // Settled: no staging or set-aside folder is left, and core's loader reads the folder as it is.
      expect(readdirSync(scratch).filter((n) => n.startsWith('.killed'))).toEqual([]);
      (await loadModel(dir)).dispose();
      resumed = true;
    }
    expect(lastStep).toBeGreaterThan(0);
  });

  it('--attention standard trains the matched baseline and prints both parameter counts', () => {
    const dir = join(scratch, 'baseline');
    const r = difftx(
      'train',
      '--data',
      text,
      '--size',
      preset,
      '--attention',
      'standard',
      '--steps',
      '2',
      '--out',
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /standard — hidden 32, 2 layers, 4 heads of 8, .* \(matched pair: DIFF \S+, baseline \S+\)/,
    );
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({
      attention: 'standard',
      numHeads: 4,
    });
  });
});

describe('a Hugging Face tokenizer', () => {
  it('trains on its ids, keeps tokenizer.json in DIR, and eval, generate and export use it', () => {
    const dir = join(scratch, 'bpe');
    const tokenizer = fileURLToPath(new URL('../../../fixtures/tokenizer/tokenizer.json', import.meta.url));
    const r = difftx('train', '--data', text, '--size', preset, '--tokenizer', tokenizer, '--steps', '3', '--out', dir);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['tokenizer.json', 'tokenizer_config.json']));
    const vocabSize = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).vocabSize;
    expect(vocabSize).toBeGreaterThan(256);
    const evaluated = JSON.parse(difftx('eval', '--model', dir, '--json').stdout);
    // Bits per byte from bits per token: the tokenizer's tokens per byte of the validation text.
    expect(evaluated.bitsPerByte).toBeLessThan(evaluated.bitsPerToken);
    const generated = difftx('generate', '--model', dir, '--prompt', 'The jury', '--max-new-tokens', '3', '--json');
    expect(generated.code, generated.stderr).toBe(0);
    expect(typeof JSON.parse(generated.stdout).text).toBe('string');
    const out = join(scratch, 'bpe-hf');
    const exported = difftx('export', '--model', dir, '--format', 'diffllama', '--out', out, '--json');
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout).tokenizer).toBe('copied');
    expect(readFileSync(join(out, 'tokenizer.json')).equals(readFileSync(tokenizer))).toBe(true);
  });
});

describe('difftx export', () => {
  it('writes a DiffLlama folder that loads back with the same logits, tokenizer included', () => {
    const out = join(scratch, 'hf');
    const r = difftx('export', '--model', join(scratch, 'straight'), '--format', 'diffllama', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ format: 'diffllama', tokenizer: 'byte-level', tolerance: 1e-12 });
    expect(doc.nmse).toBeLessThanOrEqual(1e-12);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model_type).toBe('diffllama');
    const a = difftx('generate', '--model', join(scratch, 'straight'), '--prompt', 'She read', '--greedy', '--json');
    const b = difftx('generate', '--model', out, '--prompt', 'She read', '--greedy', '--json');
    expect(b.code, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout).ids).toEqual(JSON.parse(a.stdout).ids);
  });

  it('--format onnx writes the graph, genai_config.json and the tokenizer, for every variant', () => {
    for (const [name, dtype] of [
      ['straight', 'float32'],
      ['baseline', 'float16'],
    ] as const) {
      const out = join(scratch, `${name}-onnx`);
      const r = difftx(
        'export',
        '--model',
        join(scratch, name),
        '--format',
        'onnx',
        '--dtype',
        dtype,
        '--out',
        out,
        '--json',
      );
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ format: 'onnx', tokenizer: 'byte-level', onnx: { dtype, externalData: false } });
      expect(readdirSync(out).sort()).toEqual([
        'genai_config.json',
        'model.onnx',
        'tokenizer.json',
        'tokenizer_config.json',
      ]);
      expect(JSON.parse(readFileSync(join(out, 'genai_config.json'), 'utf8')).model.type).toBe('decoder');
    }
    // Exported again over itself: the folder is replaced as a whole, now with external data.
    const out = join(scratch, 'straight-onnx');
    const again = difftx(
      'export',
      '--model',
      join(scratch, 'straight'),
      '--format',
      'onnx',
      '--external-data',
      'always',
      '--out',
      out,
    );
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/ONNX decoder with KV cache, weights float32 in model\.onnx\.data/);
    expect(readdirSync(out)).toContain('model.onnx.data');
  });

  it('--format onnx: flags that do not fit say so in one line', () => {
    const model = join(scratch, 'straight');
    const out = join(scratch, 'never-onnx');
    expectOneLineError(
      difftx('export', '--model', model, '--format', 'onnx', '--dtype', 'int4', '--out', out),
      2,
      /--dtype: expected float32, float16, got "int4"/,
    );
    expectOneLineError(
      difftx('export', '--model', model, '--format', 'onnx', '--external-data', 'maybe', '--out', out),
      2,
      /--external-data/,
    );
    expectOneLineError(
      difftx('export', '--model', model, '--format', 'onnx', '--max-positions', '0', '--out', out),
      2,
      /--max-positions: expected an integer ≥ 1/,
    );
    expectOneLineError(
      difftx('export', '--model', model, '--format', 'diffllama', '--dtype', 'float16', '--out', out),
      2,
      /--dtype is for --format onnx only/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a model DiffLlama cannot hold, naming why, and writes nothing', () => {
    const out = join(scratch, 'hf-baseline');
    const r = difftx('export', '--model', join(scratch, 'baseline'), '--format', 'diffllama', '--out', out);
    expectOneLineError(r, 1, /cannot be exported as DiffLlama .*attention 'standard'/);
    expect(existsSync(out)).toBe(false);
    expectOneLineError(
      difftx('export', '--model', join(scratch, 'straight'), '--format', 'gguf', '--out', out),
      2,
      /--format/,
    );
  });
});

describe('bad input', () => {
  it('a missing path, an empty or binary file, seq-len past the positions, steps ≤ 0: one line, no folder', () => {
    const empty = join(scratch, 'empty.txt');
    writeFileSync(empty, '');
    const binary = join(scratch, 'weights.bin');
    writeFileSync(binary, Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0, 1]));
    const out = join(scratch, 'never');
    const base = ['train', '--size', preset, '--backend', 'cpu', '--out', out];
    const cases: Array<[string[], RegExp]> = [
      [['--data', join(scratch, 'no-such.txt')], /no-such\.txt: no such file or folder/],
      [['--data', empty], /empty\.txt: the file is empty/],
      [['--data', binary], /weights\.bin: not a text file \(a NUL byte at offset 6/],
      [['--data', text, '--seq-len', '65'], /seqLen: expected at most the model's maxPositions \(64\), got 65/],
      [['--data', text, '--steps', '0'], /steps: expected an integer ≥ 1, got 0/],
      [['--data', text, '--steps=-5'], /steps: expected an integer ≥ 1, got -5/],
    ];
    for (const [args, pattern] of cases) {
      expectOneLineError(difftx(...base, ...args), 1, pattern);
      expect(existsSync(out), args.join(' ')).toBe(false);
    }
    expectOneLineError(difftx(...base, '--data', text, '--steps', 'many'), 2, /--steps: expected a number/);
    expect(existsSync(out)).toBe(false);
  });

  it('a folder that holds files is not overwritten, and --resume refuses what the checkpoint fixes', () => {
    const busy = join(scratch, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'keep me');
    expectOneLineError(
      difftx('train', '--data', text, '--out', busy),
      2,
      /already holds files; continue its run with --resume/,
    );
    expect(readdirSync(busy)).toEqual(['notes.txt']);
    expectOneLineError(
      difftx('train', '--out', join(scratch, 'straight'), '--resume', '--lr', '0.1'),
      2,
      /--lr cannot change in a resumed run/,
    );
    expectOneLineError(difftx('train', '--out', join(scratch, 'straight'), '--resume'), 2, /give a larger --steps/);
    expectOneLineError(difftx('train', '--out', busy, '--resume'), 1, /no trainer-state\.json/);
  });
});
