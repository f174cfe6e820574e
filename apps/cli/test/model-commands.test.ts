/**
 * difftx parity, logits, generate and inspect, run as a user runs them: exit codes, output documents,
 * one-line errors (2 for usage, 1 for a typed error) and no half-written files.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffTransformer, setBackend, tidy, type HostTensor } from '@diff-transformer/core';
import { readSafetensorsFile, saveDiffLlama, saveModel, writeSafetensorsFile } from '@diff-transformer/core/node';
import { reference } from '@diff-transformer/conformance';
import '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'difftx-commands-'));
const byteModel = join(scratch, 'byte-model');
const hfModel = join(scratch, 'hf-model');

function difftx(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLineError(r: ReturnType<typeof difftx>, code: number, pattern?: RegExp) {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^difftx: /);
  if (pattern) expect(r.stderr).toMatch(pattern);
}

let model: DiffTransformer;
const noTokenizerModel = join(scratch, 'no-tokenizer-model');
beforeAll(async () => {
  await setBackend('cpu');
  model = DiffTransformer.create(
    { vocabSize: 256, hiddenSize: 32, numLayers: 2, numHeads: 2, numKvHeads: 1 },
    { seed: 11, std: 0.2, perturbNorms: 0.1 },
  );
  await saveModel(model, byteModel);
  const hf = DiffTransformer.create(
    {
      vocabSize: 268,
      hiddenSize: 32,
      numLayers: 2,
      numHeads: 2,
      numKvHeads: 1,
      rope: { layout: 'half', precision: 'float32' },
      subLayerNorm: { affine: false },
    },
    { seed: 12, std: 0.2 },
  );
  await saveDiffLlama(hf.config, await hf.hostParameters(), hfModel, { maxShardBytes: 30_000 });
  const wide = DiffTransformer.create({ vocabSize: 300, hiddenSize: 16, numLayers: 1, numHeads: 2 }, { seed: 13 });
  const wideParameters = await wide.hostParameters();
  wideParameters.get('norm.weight')!.data[0] = NaN;
  const broken = DiffTransformer.fromParameters(wide.config, wideParameters);
  await saveModel(broken, noTokenizerModel);
  wide.dispose();
  broken.dispose();
  copyFileSync(join(fixtures, 'tokenizer/tokenizer.json'), join(hfModel, 'tokenizer.json'));
  copyFileSync(join(fixtures, 'tokenizer/tokenizer_config.json'), join(hfModel, 'tokenizer_config.json'));
  hf.dispose();
});
afterAll(() => {
  model.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

describe('difftx parity', () => {
  it('passes every committed fixture (exit 0) and reports NMSE per file as JSON', () => {
    const files = readdirSync(join(fixtures, 'parity')).map((f) => join(fixtures, 'parity', f));
    const r = difftx('parity', ...files, '--backend', 'cpu', '--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ backend: 'cpu', tolerance: 1e-10, summary: { pass: files.length, fail: 0 } });
    for (const result of doc.results) {
      expect(result.pass).toBe(true);
      expect(result.nmse).toBeLessThanOrEqual(1e-10);
      expect(result.source).toMatch(/^Diff-Transformer\//);
    }
    const table = difftx('parity', files[0]);
    expect(table.stdout).toMatch(/1 passed, 0 failed/);
  });

  it('exits 1 when a file is out of tolerance or unreadable, and 2 for bad usage', () => {
    const file = join(fixtures, 'parity', 'flashdiff1-gqa2-depth3.safetensors');
    const strict = difftx('parity', file, '--tolerance', '0', '--json');
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.stdout).summary).toEqual({ pass: 0, fail: 1 });
    const broken = join(scratch, 'broken-fixture.safetensors');
    writeFileSync(broken, 'not a safetensors file at all');
    const r = difftx('parity', broken, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).results[0].error).toMatch(
      /broken-fixture\.safetensors: the header length .* runs past the end of the file/,
    );
    expectOneLineError(difftx('parity'), 2, /give at least one fixture/);
    expectOneLineError(difftx('parity', file, '--backend', 'tpu'), 2, /unknown backend 'tpu'/);
  });

  it(
    'checks a DiffLlama oracle folder: logits and greedy ids ' +
      '(here an oracle from the float64 HF-layout reference)',
    async () => {
      // Build an oracle folder the way tools/parity-fixtures/generate.py diffllama lays it out.
      const dir = join(scratch, 'oracle-case');
      const hf = DiffTransformer.create(
        {
          vocabSize: 40,
          hiddenSize: 24,
          numLayers: 2,
          numHeads: 2,
          numKvHeads: 1,
          headDim: 6,
          rope: { layout: 'half', precision: 'float32' },
          subLayerNorm: { affine: false },
        },
        { seed: 4, std: 0.3, perturbNorms: 0.2 },
      );
      await saveDiffLlama(hf.config, await hf.hostParameters(), join(dir, 'model'));
      const hfParams = new Map<string, HostTensor>();
      const st = await readSafetensorsFile(join(dir, 'model', 'model.safetensors'));
      for (const name of st.tensors.keys())
        hfParams.set(name, { shape: [...st.tensors.get(name)!.shape], data: await st.readFloat32(name) });
      await st.close();
      const refConfig = {
        vocabSize: 40,
        hiddenSize: 24,
        numLayers: 2,
        numAttentionHeads: 4,
        numKeyValueHeads: 2,
        headDim: 6,
        rmsNormEps: 1e-5,
        ropeTheta: 10000,
        tieWordEmbeddings: false,
      };
      const ids = [
        [1, 2, 3, 4, 5],
        [9, 8, 7, 6, 5],
      ];
      const logits = reference.diffLlamaLogits(refConfig, hfParams, ids);
      const prompt = [3, 1, 4];
      const greedy: number[] = [];
      const sequence = [...prompt];
      for (let step = 0; step < 6; step++) {
        const row = reference.diffLlamaLogits(refConfig, hfParams, [sequence]).data.slice((sequence.length - 1) * 40);
        const next = row.indexOf(Math.max(...row));
        greedy.push(next);
        sequence.push(next);
      }
      await writeSafetensorsFile(join(dir, 'oracle.safetensors'), [
        ['ids', { shape: [2, 5], data: BigInt64Array.from(ids.flat(), BigInt) }],
        ['logits', { shape: [...logits.shape], data: logits.data }],
        ['prompt', { shape: [3], data: BigInt64Array.from(prompt, BigInt) }],
        ['greedy', { shape: [6], data: BigInt64Array.from(greedy, BigInt) }],
      ]);
      hf.dispose();
      const r = difftx('parity', dir, '--json');
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const result = JSON.parse(r.stdout).results[0];
      expect(result.nmse).toBeLessThanOrEqual(1e-10);
      expect(result.greedy).toEqual({ expected: greedy, actual: greedy, match: true });
      // A wrong greedy id fails the file.
      await writeSafetensorsFile(join(dir, 'oracle.safetensors'), [
        ['ids', { shape: [2, 5], data: BigInt64Array.from(ids.flat(), BigInt) }],
        ['logits', { shape: [...logits.shape], data: logits.data }],
        ['prompt', { shape: [3], data: BigInt64Array.from(prompt, BigInt) }],
        [
          'greedy',
          {
            shape: [6],
            data: BigInt64Array.from(
              greedy.map((g, i) => (i === 3 ? (g + 1) % 40 : g)),
              BigInt,
            ),
          },
        ],
      ]);
      expect(difftx('parity', dir).code).toBe(1);
    },
  );
});

describe('difftx logits', () => {
  it('writes one F32 tensor `logits` [B, T, vocab] equal to the model forward', async () => {
    const out = join(scratch, 'logits.safetensors');
    const r = difftx('logits', '--model', byteModel, '--ids', '1,2,3;4,5,6', '--backend', 'cpu', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(out);
    const file = await readSafetensorsFile(out);
    expect([...file.tensors.keys()]).toEqual(['logits']);
    expect(file.tensors.get('logits')).toMatchObject({ dtype: 'F32', shape: [2, 3, 256] });
    const written = await file.read('logits');
    await file.close();
    const expected = tidy(() =>
      model.forward([
        [1, 2, 3],
        [4, 5, 6],
      ]),
    );
    expect(written).toEqual(await expected.data());
    expected.dispose();
    // A DiffLlama folder (sharded) works the same way.
    expect(
      difftx('logits', '--model', hfModel, '--ids', '7,8', '--out', join(scratch, 'hf-logits.safetensors')).code,
    ).toBe(0);
  });

  it('rejects bad input with one line (2: usage, 1: a broken model) and leaves no file behind', () => {
    const out = join(scratch, 'never.safetensors');
    for (const args of [
      ['--model', byteModel, '--ids', '1,2;3', '--out', out],
      ['--model', byteModel, '--ids', '1,x', '--out', out],
      ['--model', byteModel, '--ids', '1,256', '--out', out],
      ['--model', byteModel, '--ids', '1,2'],
      ['--ids', '1,2', '--out', out],
      ['--model', byteModel, '--ids', '1', '--out', out, '--bogus'],
    ]) {
      expectOneLineError(difftx('logits', ...args), 2);
    }
    expectOneLineError(
      difftx('logits', '--model', join(scratch, 'nowhere'), '--ids', '1', '--out', out),
      1,
      /nowhere: cannot read the folder: not found \(no such file or directory\)/,
    );
    expectOneLineError(
      difftx('logits', '--model', byteModel, '--ids', '1', '--out', scratch),
      2,
      /logits: --out .* is a folder; give a file path, e\.g\. .*logits\.safetensors/,
    );
    const broken = join(scratch, 'broken-model');
    mkdirSync(broken, { recursive: true });
    copyFileSync(join(byteModel, 'config.json'), join(broken, 'config.json'));
    writeFileSync(join(broken, 'model.safetensors'), new Uint8Array(100));
    expectOneLineError(
      difftx('logits', '--model', broken, '--ids', '1', '--out', out),
      1,
      /model\.safetensors: the header length 0 is too short/,
    );
    expect(existsSync(out)).toBe(false);
    expectOneLineError(
      difftx(
        'logits',
        '--model',
        byteModel,
        '--ids',
        '1',
        '--out',
        join(scratch, 'no', 'such', 'dir', 'x.safetensors'),
      ),
      1,
      /cannot write/,
    );
    expect(readdirSync(scratch).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('difftx generate', () => {
  it('--ids --greedy --json gives the KV-cache greedy continuation and tokens per second', async () => {
    const r = difftx(
      'generate',
      '--model',
      byteModel,
      '--ids',
      '72,105',
      '--max-new-tokens',
      '6',
      '--greedy',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.ids).toHaveLength(6);
    expect(doc.tokensPerSecond).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/6 tokens in .* tokens\/s/);
    const expected = reference.greedyContinuation(model.config, await model.hostParameters(), [72, 105], 6);
    expect(doc.ids).toEqual(expected.ids);
  });

  it(
    'streams text through the byte tokenizer, and through tokenizer.json for a DiffLlama folder; ' +
      'sampling is seeded',
    () => {
      const r = difftx(
        'generate',
        '--model',
        byteModel,
        '--prompt',
        'Hi',
        '--max-new-tokens',
        '4',
        '--temperature',
        '0.8',
        '--top-k',
        '20',
        '--top-p',
        '0.9',
        '--seed',
        '3',
        '--json',
      );
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.ids).toHaveLength(4);
      expect(typeof doc.text).toBe('string');
      const again = JSON.parse(
        difftx(
          'generate',
          '--model',
          byteModel,
          '--prompt',
          'Hi',
          '--max-new-tokens',
          '4',
          '--temperature',
          '0.8',
          '--top-k',
          '20',
          '--top-p',
          '0.9',
          '--seed',
          '3',
          '--json',
        ).stdout,
      );
      expect(again.ids).toEqual(doc.ids);
      const hf = difftx('generate', '--model', hfModel, '--prompt', 'hello world', '--max-new-tokens', '5');
      expect(hf.code, hf.stderr).toBe(0);
      expect(hf.stdout.endsWith('\n')).toBe(true);
      expect(hf.stderr).toMatch(/5 tokens in/);
      const ids = difftx('generate', '--model', hfModel, '--ids', '259,264', '--max-new-tokens', '3', '--json');
      expect(JSON.parse(ids.stdout)).toMatchObject({ ids: expect.any(Array), text: expect.any(String) });
    },
  );

  it('stops at once, quietly and with exit 0, when the reader of stdout goes away (| head)', () => {
    // A million tokens would take minutes here; the pipeline's timeout fails the test if it ran on.
    const r = spawnSync(
      'bash',
      [
        '-c',
        'node "$0" generate --model "$1" --ids 1,2 --max-new-tokens 1000000 | head -c 10 >/dev/null; ' +
          'echo "exit $PIPESTATUS" >&2', // bash: the first command's status
        CLI,
        byteModel,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('exit 0\n');
  });

  it('says in one line (exit 1) that stdout cannot be written when the disk is full', () => {
    if (!existsSync('/dev/full')) return;
    const full = openSync('/dev/full', 'w');
    try {
      for (const args of [
        ['generate', '--model', byteModel, '--ids', '1,2', '--max-new-tokens', '5'],
        ['info', '--json'],
      ]) {
        const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', full, 'pipe'] });
        expect(r.status, r.stderr).toBe(1);
        expect(r.stderr).toBe('difftx: cannot write to standard output: no space left on device (ENOSPC)\n');
      }
    } finally {
      closeSync(full);
    }
  });

  it('takes negative numbers as values and says what is wrong with them', () => {
    for (const [args, message] of [
      [['--temperature', '-1'], /generate: temperature: expected a finite number > 0, got -1/],
      [['--seed', '-3'], /--seed: expected an integer ≥ 0, got "-3"/],
      [['--top-p', '-0.5'], /topP: expected .*, got -0\.5/],
      [['--max-new-tokens', '-2'], /--max-new-tokens: expected an integer ≥ 1, got "-2"/],
    ] as const) {
      const r = difftx('generate', '--model', byteModel, '--ids', '1', ...args);
      expectOneLineError(r, 2, message);
      expect(r.stderr).not.toMatch(/ambiguous/);
    }
  });

  it('refuses --prompt without a tokenizer before it reads the weights', () => {
    // Vocabulary 300, no tokenizer.json, and weights that would fail to load (non-finite): the
    // tokenizer is what gets reported, so nothing was loaded first.
    const r = difftx('generate', '--model', noTokenizerModel, '--prompt', 'hi');
    expectOneLineError(r, 2, /--prompt needs a tokenizer: .* has no tokenizer\.json and its vocabulary is 300/);
    expectOneLineError(difftx('generate', '--model', noTokenizerModel, '--ids', '1'), 1, /holds 1 NaN/);
  });

  it('rejects bad usage with one line and exit 2', () => {
    for (const args of [
      ['--model', byteModel],
      ['--model', byteModel, '--prompt', 'a', '--ids', '1'],
      ['--model', byteModel, '--ids', '1', '--greedy', '--temperature', '1'],
      ['--model', byteModel, '--ids', '1', '--temperature', '-1'],
      ['--model', byteModel, '--ids', '1', '--top-p', '2'],
      ['--model', byteModel, '--ids', '1', '--max-new-tokens', '0'],
      ['--model', byteModel, '--ids', '1;2'],
      ['--model', byteModel, '--ids', '999'],
    ]) {
      expectOneLineError(difftx('generate', ...args), 2);
    }
  });
});

describe('difftx inspect', () => {
  it('describes a native folder, a sharded DiffLlama folder and a parity fixture', () => {
    const native = JSON.parse(difftx('inspect', byteModel, '--json').stdout);
    expect(native).toMatchObject({ layout: 'native', parameterCount: expect.any(Number), config: { vocabSize: 256 } });
    expect(native.tensors.find((t: { name: string }) => t.name === 'embed_tokens.weight')).toMatchObject({
      dtype: 'F32',
      shape: [256, 32],
    });
    const hf = JSON.parse(difftx('inspect', hfModel, '--json').stdout);
    expect(hf.layout).toBe('diffllama');
    expect(hf.files.length).toBeGreaterThan(1);
    expect(hf.tensors.some((t: { name: string }) => t.name === 'model.layers.1.self_attn.lambda_q1')).toBe(true);
    const fixture = JSON.parse(
      difftx('inspect', join(fixtures, 'parity', 'flashdiffv2-mqa.safetensors'), '--json').stdout,
    );
    expect(fixture).toMatchObject({ layout: 'parity-fixture', metadata: { num_kv_heads: '1' } });
    const text = difftx('inspect', hfModel);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Hugging Face DiffLlama folder, \d+ safetensors file\(s\)/);
    expect(difftx('inspect', join(byteModel, 'model.safetensors')).stdout).toMatch(/native-weights/);
  });

  it('exits 1 with one line for a broken checkpoint and 2 without an argument', () => {
    const broken = join(scratch, 'inspect-broken.safetensors');
    writeFileSync(broken, new Uint8Array([17, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode('{"a": "nonsense"}')]));
    expectOneLineError(
      difftx('inspect', broken),
      1,
      /inspect-broken\.safetensors: tensor 'a': the header entry must be an object/,
    );
    expectOneLineError(difftx('inspect'), 2);
    expectOneLineError(difftx('inspect', join(scratch, 'missing.safetensors')), 1, /no such file/);
  });
});

describe('a model folder whose parameters hold NaN or ±Infinity', () => {
  const nanModel = join(scratch, 'nan-model');
  beforeAll(async () => {
    const params = await model.hostParameters();
    const embedding = params.get('embed_tokens.weight')!.data;
    embedding[5] = NaN;
    embedding[6] = NaN;
    embedding[7] = Infinity;
    mkdirSync(nanModel, { recursive: true });
    copyFileSync(join(byteModel, 'config.json'), join(nanModel, 'config.json'));
    await writeSafetensorsFile(
      join(nanModel, 'model.safetensors'),
      [...params].map(([name, t]) => [name, { shape: t.shape, data: t.data }] as const),
    );
  });

  it('inspect counts them per tensor and exits 1', () => {
    const r = difftx('inspect', nanModel, '--json');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.nonFiniteTensors).toBe(1);
    expect(doc.tensors.find((t: { name: string }) => t.name === 'embed_tokens.weight').nonFinite).toEqual({
      nan: 2,
      infinite: 1,
    });
    expect(doc.tensors.find((t: { name: string }) => t.name === 'norm.weight').nonFinite).toEqual({
      nan: 0,
      infinite: 0,
    });
    expect(r.stderr).toMatch(/^difftx: 1 tensor hold NaN or ±Infinity values \('embed_tokens\.weight'\)/);
    const text = difftx('inspect', nanModel);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^embed_tokens\.weight\s+F32\s+\[256, 32\]\s+model\.safetensors\s+2 NaN, 1 ±Inf$/m);
    const clean = difftx('inspect', byteModel, '--json');
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout).nonFiniteTensors).toBe(0);
  });

  it('generate and logits refuse it with one line (exit 1) unless --allow-non-finite', async () => {
    expectOneLineError(
      difftx('generate', '--model', nanModel, '--ids', '1', '--max-new-tokens', '2'),
      1,
      /tensor 'embed_tokens\.weight': holds 2 NaN and 1 ±Infinity among its 8192 values.*--allow-non-finite/,
    );
    const out = join(scratch, 'nan-logits.safetensors');
    expectOneLineError(difftx('logits', '--model', nanModel, '--ids', '0', '--out', out), 1, /holds 2 NaN/);
    expect(existsSync(out)).toBe(false);
    const r = difftx('logits', '--model', nanModel, '--ids', '0', '--out', out, '--allow-non-finite');
    expect(r.code, r.stderr).toBe(0);
    const file = await readSafetensorsFile(out);
    expect(Array.from(await file.readFloat32('logits')).every(Number.isNaN)).toBe(true);
    await file.close();
    const generated = difftx(
      'generate',
      '--model',
      nanModel,
      '--ids',
      '0',
      '--max-new-tokens',
      '2',
      '--allow-non-finite',
    );
    expect(generated.code, generated.stderr).toBe(0);
  });
});
